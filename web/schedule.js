// Scheduling: bursts of events coalesce into one update per animation frame;
// one update runs at a time (creating a layer awaits) and runs again if
// anything changed meanwhile. While an update is due, running or waiting for
// a file, the results container says so with aria-busy="true" (assistive
// technology waits for it; the browser tests read it to know the page has
// settled); it is "false" once everything asked for is shown.

/**
 * `update` is the async step to run; `onError(err)` is told of anything it
 * throws (the page must never go blank). Returns { schedule, track }:
 * track(promise) holds the page busy until a file read (or the like) ends.
 */
export function createScheduler(busyElement, update, onError) {
  let framePending = false;
  let running = false;
  let dirty = false;
  let pending = 0;  // tracked promises not yet settled

  const showBusy = () => {
    const busy = framePending || running || pending > 0;
    busyElement.setAttribute('aria-busy', busy ? 'true' : 'false');
  };

  async function pump() {
    if (running) { dirty = true; return; }
    running = true;
    try {
      do {
        dirty = false;
        try {
          await update();
        } catch (err) {
          onError(err);
        }
      } while (dirty);
    } finally {
      running = false;
      showBusy();
    }
  }

  function schedule() {
    if (framePending) return;
    framePending = true;
    showBusy();
    requestAnimationFrame(() => { framePending = false; pump(); });
  }

  async function track(promise) {
    pending++;
    showBusy();
    try {
      return await promise;
    } finally {
      pending--;
      showBusy();
    }
  }

  return { schedule, track };
}
