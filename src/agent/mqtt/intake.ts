import type { App } from '../../compose/model.js';
import { checkApp, normalizeDesired, type NormalizeOptions } from '../../compose/normalize.js';
import { BerthError, toBerthError } from '../../errors.js';
import type { CommandRequest } from '../../protocol/types.js';
import { checkCommandValue, checkDesiredValue, openMessage, parseCommand, type DesiredCheck } from '../../protocol/validate.js';
import { checkDeployPolicy, type DeployPolicy } from '../policy.js';
import type { FleetTrust } from '../trust.js';

/** What the intake needs to judge a fleet message. */
export interface IntakeOptions {
  readonly deviceId: string;
  readonly trust: FleetTrust;
  /** agent.yaml `allowUnsigned: true` (development only): plain messages are accepted too. */
  readonly allowUnsigned: boolean;
  readonly policy: DeployPolicy;
  readonly now: () => number;
  /** Where this device keeps its apps (normalize.ts): every desired state is normalized with it. */
  readonly normalize?: NormalizeOptions;
}

export type DesiredIntake =
  | { readonly kind: 'app'; readonly app: App }
  /** A signed desired state whose revision the caller said to skip (it is the one running, say). */
  | { readonly kind: 'skip'; readonly revision: number }
  /**
   * Refused. `authentic`: the fleet's key vouches for it (or unsigned ones are allowed), so its
   * revision may be recorded as rejected; a message nobody vouches for must never move `reported`.
   */
  | { readonly kind: 'refused'; readonly error: BerthError; readonly revision?: number; readonly authentic: boolean };

export interface CommandIntake {
  readonly command: CommandRequest;
  /** Whether a trusted signature covered it: only a signed rotate-key is ever run. */
  readonly signed: boolean;
}

const unsigned = (what: string): BerthError =>
  new BerthError('auth', `unsigned ${what}: this device accepts only messages signed with the fleet key`, { hint: 'berth fleet deploy and berth fleet cmd sign with --signing-key (or signingKey in the fleet file)' });

/**
 * The agent's message intake: every desired state and command from the broker passes here before
 * anything acts on it. A message is read once (size, JSON, envelope shape: protocol/validate.ts), its
 * signature checked against the trusted fleet key and this device (src/agent/trust.ts), then its body
 * checked and normalized (src/compose/) and, for a desired state, held to the deploy policy
 * (src/agent/policy.ts).
 */
export class MessageIntake {
  constructor(private readonly o: IntakeOptions) {}

  /**
   * A desired-state payload judged. `skip(revision)` is asked with a signed envelope's revision before
   * its signature is checked: the retained desired state comes again on every reconnect, also after a
   * key rotation made its signature stale, and a revision already handled needs no verdict.
   */
  desired(payload: Uint8Array, skip: (revision: number) => boolean): DesiredIntake {
    let opened: ReturnType<typeof openMessage>;
    try {
      opened = openMessage(payload, 'desired state');
    } catch (err) {
      return { kind: 'refused', error: toBerthError(err), authentic: false };
    }
    if ('plain' in opened) {
      if (!this.o.allowUnsigned) return { kind: 'refused', error: unsigned('desired state'), authentic: false };
      return this.checked(checkDesiredValue(opened.plain, (d) => normalizeDesired(d, this.o.normalize)));
    }
    const env = opened.envelope;
    if (env.kind !== 'desired') return { kind: 'refused', error: new BerthError('auth', `a signed ${env.kind} message on the desired topic`), authentic: false };
    if (env.device === this.o.deviceId && skip(env.revision)) return { kind: 'skip', revision: env.revision };
    try {
      this.o.trust.verify(env, this.o.deviceId);
    } catch (err) {
      return { kind: 'refused', error: toBerthError(err), revision: env.revision, authentic: false };
    }
    const result = this.checked(checkApp(env.body, this.o.normalize));
    if (result.kind === 'app' && result.app.revision !== env.revision) {
      return { kind: 'refused', error: new BerthError('auth', `signed for revision ${env.revision}, but the desired state is revision ${result.app.revision}`), revision: env.revision, authentic: true };
    }
    return result;
  }

  private checked(c: DesiredCheck<App>): DesiredIntake {
    if (!c.ok) return { kind: 'refused', error: toBerthError(c.error), ...(c.revision !== undefined && { revision: c.revision }), authentic: true };
    try {
      checkDeployPolicy(c.desired, this.o.policy, this.o.normalize?.stateRoot);
    } catch (err) {
      return { kind: 'refused', error: toBerthError(err), revision: c.desired.revision, authentic: true };
    }
    return { kind: 'app', app: c.desired };
  }

  /** A command payload for topic `cmd/<id>` judged; throws a BerthError (the result's reason) when refused. */
  command(id: string, payload: Uint8Array): CommandIntake {
    const opened = openMessage(payload, 'command');
    if ('plain' in opened) {
      if (!this.o.allowUnsigned) throw unsigned('command');
      return { command: checkCommandValue(opened.plain), signed: false };
    }
    const env = opened.envelope;
    if (env.kind !== 'cmd') throw new BerthError('auth', `a signed ${env.kind} message on a command topic`);
    if (env.id !== id) throw new BerthError('auth', `signed as command ${env.id}, received as ${id}`);
    this.o.trust.verify(env, this.o.deviceId);
    // Parsed before it is admitted: a malformed command is refused without using up its id.
    const command = parseCommand(env.body);
    this.o.trust.admitCommand(id, env.issued, this.o.now());
    return { command, signed: true };
  }
}
