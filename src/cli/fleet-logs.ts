import type { FleetFlags } from '../fleet/session.js';
import { isValidDeviceId } from '../protocol/topics.js';
import { BerthError, ERROR_CATEGORIES } from '../errors.js';
import type { CliContext } from './context.js';

/**
 * `berth fleet logs DEVICE SERVICE -f` and `berth fleet cmd DEVICE logs SERVICE --follow` (one code path):
 * the service's last `tail` lines, then its new ones as they come, like `docker logs -f`, through the
 * agent's command protocol (src/fleet/log-follow.ts, the follow the dashboard uses: renewed, re-armed
 * after an agent restart, polling an older agent). Ctrl-C (or SIGTERM) ends it on the device
 * (`logs-stop`) before exiting. stderr lines go to stderr; notes about the follow go to stderr, prefixed.
 */
export async function followDeviceLogs(ctx: CliContext, device: string, service: string, tail: number, opts: FleetFlags): Promise<void> {
  if (!isValidDeviceId(device)) throw new BerthError('usage', `invalid device id "${device}": use 1–128 of [A-Za-z0-9_.:-], starting with a letter or digit`);
  const [{ openFleet, loadSigningKey }, { DeviceLogFollow }] = await Promise.all([import('../fleet/session.js'), import('../fleet/log-follow.js')]);
  const signer = await loadSigningKey(opts, ctx.env);
  // The device's status is subscribed: it tells when the agent restarted and the follow must be re-armed.
  const session = await openFleet(opts, ctx.env, [], false, [device]);
  const note = (text: string): void => void process.stderr.write(`berth: ${device}: ${text}\n`);
  try {
    if (session.view.devices.get(device)?.online !== true) note('offline or unknown: the logs follow once it connects');
    await new Promise<void>((resolve) => {
      let ended: { reason: string; error?: BerthError } | undefined;
      const follow = DeviceLogFollow.start({ link: session.link, signer }, { device, service, tail }, {
        lines: (lines) => {
          for (const l of lines) (l.stream === 'stderr' ? process.stderr : ctx.out).write(`${l.text}\n`);
        },
        mode: (mode) => {
          if (mode === 'poll') note('this agent cannot stream logs: asking again every 3 s');
          else if (mode === 'waiting') note('offline or its agent is restarting: the follow resumes when it is back');
        },
        end: (reason, error) => {
          ended = { reason, ...(error && { error }) };
          done();
        },
      });
      const done = (): void => {
        process.off('SIGINT', done);
        process.off('SIGTERM', done);
        // After the device's own end there is nothing to stop; after Ctrl-C, logs-stop goes out first.
        void follow.close().finally(() => {
          if (ended !== undefined) {
            note(ended.reason);
            // The container exiting ends a follow as it ends `docker logs -f`: not a failure.
            if (ended.error) process.exitCode = ERROR_CATEGORIES[ended.error.category].exit;
          }
          resolve();
        });
      };
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
    });
  } finally {
    await session.close();
  }
}
