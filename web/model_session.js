// A decoding session of one trained model: the sequence the user typed, the
// tokens fed so far through the runner's stepper (a key/value cache per
// attention layer), and what each step returned. No DOM: the page draws
// `steps`, the tests read them through the page's export.
//
// The typed sequence and the fed tokens are kept apart: editing the sequence
// keeps the steps of the prefix it shares with what was fed (the cache is
// truncated to that prefix, not recomputed), and with "feed the prediction
// back" the fed tokens run past the typed ones (the model writing).

// The reverse model's end mark: once it is fed, generation stops.
const END = '.';

export class ModelSession {
  #stepper;

  /** `model`: a TinyModel (web/models/tiny_model.js). */
  constructor(model) {
    this.model = model;
    this.#stepper = model.stepper();
    /** The typed sequence as token ids (the last valid one). */
    this.typed = [];
    /** Tokens fed so far; a prefix of `typed`, then predictions fed back. */
    this.fed = [];
    /** One record per fed token: the stepper's result. */
    this.steps = [];
  }

  /**
   * Sets the typed sequence. Throws the runner's RangeError (naming the
   * character) for a symbol outside the vocabulary, or when it is longer than
   * the positions the model learned; the session is then unchanged.
   */
  setText(text) {
    const tokens = this.model.encode(text);
    // The same sequence again keeps everything, the tokens written after it too.
    if (tokens.length === this.typed.length && tokens.every((t, i) => t === this.typed[i])) return;
    if (tokens.length > this.model.maxLen)
      throw new RangeError(`${tokens.length} symbols; the model learned positions 0 … ${this.model.maxLen - 1}, so at most ${this.model.maxLen}`);
    this.typed = tokens;
    // Keep the steps of the common prefix; the cache forgets the rest.
    let keep = 0;
    while (keep < this.fed.length && keep < tokens.length && this.fed[keep] === tokens[keep]) keep++;
    if (keep < this.fed.length) this.#truncate(keep);
  }

  /** The next token to feed, or null when there is none. */
  next({ feedBack }) {
    const n = this.fed.length;
    if (n >= this.model.maxLen) return null;
    if (n < this.typed.length) return this.typed[n];
    if (!feedBack || n === 0) return null;
    if (this.model.vocab[this.fed[n - 1]] === END) return null;
    return this.steps[n - 1].prediction;
  }

  /** Feeds one token; returns its step, or null when there was nothing to feed. */
  step(options) {
    const token = this.next(options);
    if (token == null) return null;
    const s = this.#stepper.step(token);
    this.fed.push(token);
    this.steps.push(s);
    return s;
  }

  /** Steps until there is nothing left to feed. */
  runToEnd(options) {
    while (this.step(options)) { /* each step appends to `steps` */ }
  }

  reset() { this.#truncate(0); }

  /** True when fed token i was the model's own prediction, not typed. */
  isGenerated(i) { return i >= this.typed.length || this.fed[i] !== this.typed[i]; }

  dispose() { this.#stepper.dispose(); }

  #truncate(n) {
    this.#stepper.truncate(n);
    this.fed.length = n;
    this.steps.length = n;
  }
}
