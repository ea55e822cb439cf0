#!/usr/bin/python3
"""Trains the demo page's tiny transformers, whose heads do jobs a learner can see.

  /usr/bin/python3 scripts/train_demo.py      (Debian's python3-torch, CPU, one thread, a few minutes)

Two models, both pre-LayerNorm decoders whose attention layers are
torch.nn.MultiheadAttention with a causal mask, so that mha-wasm loads each
one as it is (loadStateDict / fromSafetensors under the prefix layers.N.attn.):

  induction  letters a-z with a repeated random segment; attention only, two
             layers: a previous-token head (layer 0) and an induction head
             (layer 1) appear.
  reverse    "31415>51413." : digits, '>', the digits reversed, '.'; two layers
             with an MLP: a reversal head (layer 1) reads the mirror position.

It writes, from one seed (same seed, same thread count -> the same bytes):
  web/models/<name>.safetensors   weights (float32, < 1 MB)
  web/models/<name>.json          architecture, vocabulary, heads' roles, measured behaviour
  web/models/index.json           the models' names
  docs/demo_models_loss.svg       both loss curves
  tests/fixtures/demo_models/<name>.json   logits and per-head weights in float64
"""
import json
import math
import random
import struct
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / 'web' / 'models'
FIXTURES_DIR = ROOT / 'tests' / 'fixtures' / 'demo_models'
LOSS_SVG = ROOT / 'docs' / 'demo_models_loss.svg'
SEED = 20240522
LN_EPS = 1e-5

# Fresh sequences for measuring what the heads do (not seen in training).
MEASURE_SEQUENCES = 2000
# The weight a head must put on the position its job names, per query, for
# that query to count (the "most of its weight").
HEAD_WEIGHT_THRESHOLD = 0.5


# ---------------------------------------------------------------- the model

class MLP(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc_in = nn.Linear(d, hidden)
        self.fc_out = nn.Linear(hidden, d)

    def forward(self, x):
        # ReLU, not GELU: JavaScript has no erf, and the runner must match exactly.
        return self.fc_out(torch.relu(self.fc_in(x)))


class Block(nn.Module):
    """x + attn(ln1(x)), then x + mlp(ln2(x)) when the model has an MLP."""

    def __init__(self, d, heads, mlp_hidden):
        super().__init__()
        self.ln1 = nn.LayerNorm(d, eps=LN_EPS)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        if mlp_hidden:
            self.ln2 = nn.LayerNorm(d, eps=LN_EPS)
            self.mlp = MLP(d, mlp_hidden)
        else:
            self.mlp = None

    def forward(self, x, causal_mask, need_weights):
        h = self.ln1(x)
        a, w = self.attn(h, h, h, attn_mask=causal_mask, need_weights=need_weights,
                         average_attn_weights=False)
        x = x + a
        if self.mlp is not None:
            x = x + self.mlp(self.ln2(x))
        return x, w


class TinyTransformer(nn.Module):
    """Token and learned position embeddings, pre-LN blocks, final LN, linear unembedding."""

    def __init__(self, vocab, d, layers, heads, mlp_hidden, max_len):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, d)
        self.pos_emb = nn.Embedding(max_len, d)
        self.layers = nn.ModuleList(Block(d, heads, mlp_hidden) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, eps=LN_EPS)
        self.unembed = nn.Linear(d, vocab)

    def forward(self, tokens, need_weights=False):
        """tokens [B, L] -> logits [B, L, V] and, per layer, weights [B, H, L, L]."""
        L = tokens.shape[1]
        x = self.tok_emb(tokens) + self.pos_emb(torch.arange(L))
        # True = blocked, as nn.MultiheadAttention (and mha-wasm) read a boolean mask.
        causal = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
        weights = []
        for block in self.layers:
            x, w = block(x, causal, need_weights)
            weights.append(w)
        return self.unembed(self.ln_f(x)), weights


# ---------------------------------------------------------------- the tasks
# Each task: vocabulary, a batch maker (tokens, loss mask), and a measurement.

LETTERS = [chr(ord('a') + i) for i in range(26)]
INDUCTION_LEN = 32
SEGMENT_MIN, SEGMENT_MAX = 5, 12


def induction_sequence(rng):
    """Random letters with one random segment repeated later; returns tokens, s1, s2, k."""
    T, V = INDUCTION_LEN, len(LETTERS)
    tokens = [rng.randrange(V) for _ in range(T)]
    k = rng.randint(SEGMENT_MIN, SEGMENT_MAX)
    s1 = rng.randint(0, T - 2 * k)
    s2 = rng.randint(s1 + k, T - k)
    tokens[s2:s2 + k] = tokens[s1:s1 + k]
    return tokens, s1, s2, k


def induction_training_sequence(rng):
    """Training text: random runs of letters and copies from any earlier point
    (LZ77-like, a copy may overlap itself), so that earlier copies sit at every
    position and the previous-token head is needed everywhere, not only early on."""
    T, V = INDUCTION_LEN, len(LETTERS)
    tokens = []
    while len(tokens) < T:
        if len(tokens) >= 4 and rng.random() < 0.5:
            start = rng.randrange(len(tokens) - 1)
            for i in range(rng.randint(3, 10)):
                tokens.append(tokens[start + i])
        else:
            tokens += [rng.randrange(V) for _ in range(rng.randint(1, 6))]
    return tokens[:T]


def induction_batch(rng, batch):
    # Half the batch as the measured sequences are made, half copies anywhere.
    seqs = [induction_sequence(rng)[0] if i % 2 else induction_training_sequence(rng) for i in range(batch)]
    tokens = torch.tensor(seqs)
    return tokens, torch.ones(batch, INDUCTION_LEN - 1, dtype=torch.bool)


DIGITS = [str(i) for i in range(10)]
REVERSE_VOCAB = DIGITS + ['>', '.']
SEP, END = 10, 11
REVERSE_MIN, REVERSE_MAX = 1, 8
REVERSE_LEN = 2 * REVERSE_MAX + 2   # digits, '>', reversed digits, '.'


def reverse_sequence(rng):
    n = rng.randint(REVERSE_MIN, REVERSE_MAX)
    digits = [rng.randrange(10) for _ in range(n)]
    return digits + [SEP] + digits[::-1] + [END], n


def reverse_batch(rng, batch):
    rows, masks = [], []
    for _ in range(batch):
        seq, n = reverse_sequence(rng)
        pad = REVERSE_LEN - len(seq)
        rows.append(seq + [END] * pad)
        # Loss only where the answer is determined: from '>' on, up to the '.'.
        masks.append([n <= p <= 2 * n for p in range(REVERSE_LEN - 1)])
    return torch.tensor(rows), torch.tensor(masks)


# ---------------------------------------------------------------- training

def train(model, make_batch, rng, steps, batch, lr):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = 100
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup)
                                              * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / steps))))
    losses = []
    for step in range(steps):
        tokens, mask = make_batch(rng, batch)
        logits, _ = model(tokens[:, :-1])
        per_token = nn.functional.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction='none')
        loss = per_token[mask].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 500 == 0 or step == steps - 1:
            print(f'  step {step:5d}  loss {loss.item():.4f}', flush=True)
    return losses


@torch.no_grad()
def weights_of(model, tokens):
    """Per layer [N, H, L, L], in float64 like the fixtures."""
    _, weights = model(tokens, need_weights=True)
    return weights


# ---------------------------------------------------------------- measurement
# The same properties tests/js/demo_models.test.js checks on sequences it draws itself.

def best_head(scores):
    return max(range(len(scores)), key=lambda h: scores[h])


@torch.no_grad()
def measure_induction(model, rng):
    seqs = [induction_sequence(rng) for _ in range(MEASURE_SEQUENCES)]
    tokens = torch.tensor([s[0] for s in seqs])
    logits, (w0, w1) = model(tokens, need_weights=True)
    H = w0.shape[1]
    # Previous-token: every query q >= 1, weight on key q - 1.
    prev = [[] for _ in range(H)]
    # Induction: queries in the second copy whose letter occurs once before
    # (in the first copy): weight on the key after that earlier occurrence.
    ind = [[] for _ in range(H)]
    correct = total_next = 0
    for b, (seq, s1, s2, k) in enumerate(seqs):
        for q in range(1, INDUCTION_LEN):
            for h in range(H):
                prev[h].append(w0[b, h, q, q - 1].item())
        for j in range(k):
            q = s2 + j
            if seq[:q].count(seq[q]) != 1:
                continue
            for h in range(H):
                ind[h].append(w1[b, h, q, s1 + j + 1].item())
            if j < k - 1 and q + 1 < INDUCTION_LEN:
                total_next += 1
                correct += int(logits[b, q].argmax().item() == seq[q + 1])
    return {
        'previousToken': head_figures(0, prev),
        'induction': head_figures(1, ind),
        'copyAccuracy': {'measured': round(correct / total_next, 4), 'queries': total_next},
    }


@torch.no_grad()
def measure_reverse(model, rng):
    seqs = [reverse_sequence(rng) for _ in range(MEASURE_SEQUENCES)]
    H = model.layers[0].attn.num_heads
    mirror_w = [[] for _ in range(H)]
    exact = 0
    # Sequences of one length n run as one batch.
    for n in range(REVERSE_MIN, REVERSE_MAX + 1):
        group = torch.tensor([seq for seq, m in seqs if m == n])
        if len(group) == 0:
            continue
        _, (_, w1) = model(group[:, :-1], need_weights=True)
        # Query p (from '>' to the last digit written) reads key 2n-1-p: the digit it writes next.
        for h in range(H):
            mirror_w[h] += torch.stack([w1[:, h, p, 2 * n - 1 - p] for p in range(n, 2 * n)], 1).flatten().tolist()
        exact += (greedy_reverse(model, group[:, :n + 1]) == group[:, n + 1:]).all(1).sum().item()
    return {
        'reversal': head_figures(1, mirror_w),
        'exactReversal': {'measured': round(exact / len(seqs), 4), 'sequences': len(seqs)},
    }


@torch.no_grad()
def greedy_reverse(model, prompt):
    """prompt [N, n + 1] (digits and '>') -> the n + 1 tokens the model writes after it, greedily."""
    tokens = prompt
    for _ in range(prompt.shape[1]):
        logits, _ = model(tokens)
        tokens = torch.cat([tokens, logits[:, -1:].argmax(-1)], 1)
    return tokens[:, prompt.shape[1]:]


def head_figures(layer, per_head):
    """The best head's figures for one property, and every head of that layer's."""
    def figures(values):
        return {'meanWeight': round(sum(values) / len(values), 4),
                'fractionAboveThreshold': round(sum(v >= HEAD_WEIGHT_THRESHOLD for v in values) / len(values), 4)}
    head = best_head([sum(v) for v in per_head])
    return {'layer': layer, 'head': head, 'queries': len(per_head[head]), **figures(per_head[head]),
            'everyHead': [figures(v) for v in per_head]}


def floor_to(x, step):
    return math.floor(x / step + 1e-9) * step


def with_thresholds(figures):
    """The thresholds the JS test holds the shipped weights to: below the
    measured figures with a margin, since it draws fewer, different sequences."""
    out = {}
    for name, f in figures.items():
        measured = f.get('fractionAboveThreshold', f.get('measured'))
        out[name] = {**f, 'minWeight': HEAD_WEIGHT_THRESHOLD if 'head' in f else None,
                     'minFraction': round(max(0.0, floor_to(measured - 0.05, 0.05)), 2)}
        if out[name]['minWeight'] is None:
            del out[name]['minWeight']
    return out


# ---------------------------------------------------------------- files

def write_safetensors(path, tensors, metadata):
    """The safetensors format: u64 header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        data = struct.pack(f'<{t.numel()}f', *t.flatten().tolist())
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header['__metadata__'] = metadata
    text = json.dumps(header, separators=(',', ':'), sort_keys=True).encode()
    text += b' ' * (-len(text) % 8)
    path.write_bytes(struct.pack('<Q', len(text)) + text + b''.join(blobs))


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=1) + '\n')


def rounded(t, digits=10):
    """Nested lists with 10 significant digits: far below the float32 tolerance, half the bytes."""
    if t.dim() == 0:
        return float(f'{t.item():.{digits}g}')
    return [rounded(x, digits) for x in t]


@torch.no_grad()
def fixture(model, vocab, texts):
    """PyTorch in float64 on the float32 weights: logits [L, V] and per layer [H, L, L]."""
    m64 = model.double()
    cases = []
    for text in texts:
        tokens = torch.tensor([[vocab.index(c) for c in text]])
        logits, weights = m64(tokens, need_weights=True)
        cases.append({'text': text, 'tokens': tokens[0].tolist(), 'logits': rounded(logits[0]),
                      'weights': [rounded(w[0]) for w in weights]})
    model.float()
    return cases


def loss_svg(curves):
    """Both loss curves on one chart, hand-drawn: means over windows of 25 steps."""
    W, Hh, left, right, top, bottom = 640, 300, 56, 16, 28, 40
    pw, ph = W - left - right, Hh - top - bottom
    window = 25
    ymax = math.ceil(max(max(sum(c[i:i + window]) / len(c[i:i + window]) for i in range(0, len(c), window))
                         for _, c, _ in curves))
    xmax = max(len(c) for _, c, _ in curves)
    X = lambda s: left + pw * s / xmax
    Y = lambda v: top + ph * (1 - v / ymax)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {Hh}" width="{W}" height="{Hh}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{Hh}" fill="#fff"/>',
           f'<text x="{left}" y="18" font-size="14">Training loss (cross-entropy, nats; mean of {window} steps)</text>']
    for v in range(0, ymax + 1):
        out.append(f'<line x1="{left}" x2="{W - right}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 8}" y="{Y(v) + 4:.1f}" text-anchor="end">{v}</text>')
    xstep = 500 if xmax <= 4000 else 1000
    for s in range(0, xmax + 1, xstep):
        out.append(f'<text x="{X(s):.1f}" y="{Hh - bottom + 16}" text-anchor="middle">{s}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{Hh - 6}" text-anchor="middle">step</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    for i, (name, c, colour) in enumerate(curves):
        pts = []
        for s in range(0, len(c), window):
            chunk = c[s:s + window]
            pts.append(f'{X(s + len(chunk) / 2):.1f},{Y(sum(chunk) / len(chunk)):.1f}')
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(pts)}"/>')
        lx, ly = W - right - 150, top + 18 + 18 * i
        out.append(f'<line x1="{lx}" x2="{lx + 20}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 26}" y="{ly}">{name}</text>')
    out.append('</svg>')
    return '\n'.join(out) + '\n'


# ---------------------------------------------------------------- the two models

MODELS = [
    {
        'name': 'induction',
        'title': 'Induction heads',
        'summary': 'Letters with a repeated random segment. Layer 0 has a previous-token head; '
                   'layer 1 has an induction head: at a letter seen once before, it looks at the '
                   'letter that came after the earlier copy, and the model predicts it.',
        'vocab': LETTERS, 'dModel': 32, 'numLayers': 2, 'numHeads': 2, 'mlpHidden': 0,
        'maxLen': INDUCTION_LEN, 'steps': 3000, 'batch': 32, 'lr': 3e-3,
        'batchFn': induction_batch, 'measureFn': measure_induction,
        'roles': {'previousToken': 'previous-token head: each letter looks at the one before it',
                  'induction': 'induction head: looks at the letter after the earlier copy of the current letter'},
        'examples': ['thecatsatonthemat', 'abcdefgxyzabcdefg', 'qwertyuiopqwertyuiop'],
        'fixtures': ['abcdefgxyzabcdefg', 'thecatsatonthematthecatsat', 'zqxjkvbpzqxjkvbpmnlwzqxjkv'],
        'colour': '#1f77b4',
    },
    {
        'name': 'reverse',
        'title': 'Reverse digits',
        'summary': 'Up to 8 digits, then ">" : the model writes them reversed, then ".". Layer 1 has '
                   'a reversal head: each output position '
                   'reads the mirror-image input digit, the one it must write next.',
        'vocab': REVERSE_VOCAB, 'dModel': 32, 'numLayers': 2, 'numHeads': 2, 'mlpHidden': 64,
        'maxLen': REVERSE_LEN, 'steps': 1500, 'batch': 64, 'lr': 3e-3,
        'batchFn': reverse_batch, 'measureFn': measure_reverse,
        'roles': {'reversal': 'reversal head: from the ">" on, each position reads the mirror-image input digit'},
        'examples': ['31415926>', '12345>', '907>'],
        'fixtures': ['31415926>62951413.', '12345>54321.', '7>7.'],
        'colour': '#d62728',
    },
]


def tensor_names(spec):
    """Where each part of the model is in the safetensors file (the runner reads these)."""
    names = {'tokenEmbedding': 'tok_emb.weight', 'positionEmbedding': 'pos_emb.weight',
             'finalNorm': 'ln_f.', 'unembedding': 'unembed.',
             'layers': []}
    for i in range(spec['numLayers']):
        layer = {'norm1': f'layers.{i}.ln1.', 'attention': f'layers.{i}.attn.'}
        if spec['mlpHidden']:
            layer.update({'norm2': f'layers.{i}.ln2.', 'mlpIn': f'layers.{i}.mlp.fc_in.',
                          'mlpOut': f'layers.{i}.mlp.fc_out.'})
        names['layers'].append(layer)
    return names


def build(spec):
    print(f"{spec['name']}: training {spec['steps']} steps", flush=True)
    torch.manual_seed(SEED)
    rng = random.Random(f"{SEED}-{spec['name']}-train")
    model = TinyTransformer(len(spec['vocab']), spec['dModel'], spec['numLayers'], spec['numHeads'],
                            spec['mlpHidden'], spec['maxLen'])
    t0 = time.time()
    losses = train(model, spec['batchFn'], rng, spec['steps'], spec['batch'], spec['lr'])
    model.eval()
    figures = with_thresholds(spec['measureFn'](model, random.Random(f"{SEED}-{spec['name']}-measure")))
    print(f"  {time.time() - t0:.0f} s; measured: {json.dumps(figures)}", flush=True)

    weights_file = f"{spec['name']}.safetensors"
    write_safetensors(MODELS_DIR / weights_file, model.state_dict(),
                      {'model': spec['name'], 'written_by': 'scripts/train_demo.py'})
    heads = [{'role': role, 'layer': figures[role]['layer'], 'head': figures[role]['head'], 'description': text}
             for role, text in spec['roles'].items()]
    tail = losses[-100:]
    write_json(MODELS_DIR / f"{spec['name']}.json", {
        'name': spec['name'], 'title': spec['title'], 'summary': spec['summary'],
        'weights': weights_file,
        'vocab': spec['vocab'],
        'architecture': {
            'dModel': spec['dModel'], 'numLayers': spec['numLayers'], 'numHeads': spec['numHeads'],
            'mlpHidden': spec['mlpHidden'], 'activation': 'relu', 'maxLen': spec['maxLen'],
            'positions': 'learned', 'layerNormEps': LN_EPS,
            'block': 'x += attn(ln1(x)) with a causal mask; x += mlp(ln2(x)) when mlpHidden > 0',
            'attention': 'torch.nn.MultiheadAttention (in_proj_weight, in_proj_bias, out_proj.*)',
            'tensors': tensor_names(spec),
        },
        'heads': heads,
        'behaviour': figures,
        'behaviourNotes': {
            'minWeight': 'a query counts when the head puts at least this weight on the position its role names',
            'fractionAboveThreshold': f'measured over fresh sequences ({MEASURE_SEQUENCES}) by the training script',
            'minFraction': 'what the tests require on their own fresh sequences: the measured figure less a margin',
        },
        'examples': spec['examples'],
        'training': {'seed': SEED, 'steps': spec['steps'], 'batch': spec['batch'], 'lr': spec['lr'],
                     'optimizer': 'AdamW, weight decay 0.01, 100 warm-up steps, cosine to 10%',
                     'finalLoss': round(sum(tail) / len(tail), 4)},
    })
    write_json(FIXTURES_DIR / f"{spec['name']}.json", {
        'model': spec['name'],
        'note': 'PyTorch in float64 on the committed float32 weights; written by scripts/train_demo.py',
        'tolerance': FIXTURE_TOLERANCE,
        'cases': fixture(model, spec['vocab'], spec['fixtures']),
    })
    return losses


# What a float32 run (mha-wasm, plus the runner's float64 JS around it) must
# match the float64 fixtures to: |got - want| <= atol + rtol * |want|.
FIXTURE_TOLERANCE = {'logits': {'atol': 1e-4, 'rtol': 1e-4}, 'weights': {'atol': 1e-5, 'rtol': 0}}


def main():
    # One thread: the bytes then do not depend on the core count, and on a busy
    # two-core machine OpenMP's second thread made each step ten times slower.
    torch.set_num_threads(1)
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    FIXTURES_DIR.mkdir(parents=True, exist_ok=True)
    curves = []
    for spec in MODELS:
        curves.append((spec['title'], build(spec), spec['colour']))
    LOSS_SVG.write_text(loss_svg(curves))
    write_json(MODELS_DIR / 'index.json', {'models': [s['name'] for s in MODELS]})
    return 0


if __name__ == '__main__':
    sys.exit(main())
