// How much of the machine other work used while a measurement ran. The load
// average cannot say (the bench's own threads are in it, and it lags by a
// minute); this counts CPU time instead: all CPUs' busy time from /proc/stat
// (including "steal", time the hypervisor gave to other guests) minus this
// process's own CPU time (all its threads), over the CPUs' total time.
import fs from 'node:fs';

const USER_HZ_MS = 10;  // /proc/stat counts in USER_HZ = 100 ticks per second on Linux

function procStat() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    const busy = user + nice + system + irq + softirq + (steal || 0);
    return { busy: busy * USER_HZ_MS, total: (busy + idle + (iowait || 0)) * USER_HZ_MS };
  } catch {
    return null;
  }
}

/** Starts counting; the returned function gives { others, own } as fractions of all CPUs' time. */
export function startContention() {
  const s0 = procStat();
  const c0 = process.cpuUsage();
  return () => {
    const s1 = procStat();
    if (!s0 || !s1 || s1.total <= s0.total) return null;
    const c = process.cpuUsage(c0);
    const own = (c.user + c.system) / 1000;
    const total = s1.total - s0.total;
    return { others: Math.max(0, (s1.busy - s0.busy - own) / total), own: own / total };
  };
}
