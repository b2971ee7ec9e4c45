// What the remote-control test clients share: record every event of `types` that `obs` hears
// in `report.events`, in order, and wait for one with a deadline.
export function watchEvents(obs, types, report) {
  const waiters = [];
  const seen = (type, data) => {
    report.events.push({ type, ...data });
    for (const waiter of [...waiters]) {
      if (waiter.type === type && waiter.accept(data)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(data);
      }
    }
  };
  for (const type of types) {
    obs.on(type, (data) => seen(type, data));
  }
  // The next event of `type` that `accept` takes (events heard before the call do not count).
  return (type, accept = () => true) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} within 20 s`)), 20000);
      waiters.push({ type, accept, resolve: (data) => { clearTimeout(timer); resolve(data); } });
    });
}

// Asks `obs` for `request` (with `data`) every 50 ms until `accept` takes the answer, up to
// 400 times (20 s); the answer taken. `what` says what never came.
export async function pollUntil(obs, request, data, accept, what) {
  for (let tries = 0; tries < 400; tries++) {
    const answer = await obs.call(request, data);
    if (accept(answer)) return answer;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(what);
}
