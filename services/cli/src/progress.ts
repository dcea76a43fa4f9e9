import cliProgress from 'cli-progress';

/** A byte progress bar on stderr (silent when stderr is not a terminal). */
export function byteProgress(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {doneMiB}/{totalMiB} MiB | {eta_formatted} left`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0, { doneMiB: mib(0), totalMiB: mib(total) });
        started = true;
      }
      bar.update(done, { doneMiB: mib(done), totalMiB: mib(total) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** A count progress bar (e.g. sessions opened) on stderr. */
export function countProgress(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total}`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
