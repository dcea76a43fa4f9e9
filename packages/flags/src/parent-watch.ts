/**
 * A service started by `switchyard up` (or any launcher that sets SWITCHYARD_PARENT_PID) stops when its
 * parent is gone — killed with SIGKILL, say, when it could not stop its children itself — so no process
 * is left orphaned. Checked once a second; the service's own SIGTERM handler does the stopping.
 */
export function stopWithParent(env: NodeJS.ProcessEnv = process.env): void {
  const parent = Number(env['SWITCHYARD_PARENT_PID']);
  if (!Number.isSafeInteger(parent) || parent <= 1) return;
  const timer = setInterval(() => {
    // NOTE: an orphan is re-parented (to init or a subreaper), so its ppid changes.
    if (process.ppid !== parent) {
      clearInterval(timer);
      process.stderr.write(`parent process ${parent} is gone: stopping\n`);
      process.kill(process.pid, 'SIGTERM');
    }
  }, 1_000);
  timer.unref();
}
