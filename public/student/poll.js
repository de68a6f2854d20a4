// Timers that refresh what the page shows, paused while the tab is hidden (a phone in
// a pocket costs the API nothing) and caught up at once when it shows again.

const pollers = new Set();

/** {start, stop}: run `task` every `intervalMs` while started and the tab is visible. */
export function createPoller(task, intervalMs) {
  let timer = null;
  let wanted = false;
  const arm = () => {
    window.clearInterval(timer);
    timer = null;
    if (wanted && !document.hidden) timer = window.setInterval(task, intervalMs);
  };
  const poller = {
    start() {
      wanted = true;
      arm();
    },
    stop() {
      wanted = false;
      arm();
    },
    visibilityChanged() {
      if (wanted && !document.hidden) task();
      arm();
    },
  };
  pollers.add(poller);
  return poller;
}

document.addEventListener("visibilitychange", () => {
  for (const poller of pollers) poller.visibilityChanged();
});
