import { BerthError } from '../errors.js';

/**
 * The labels that tie a container to the app model: the one place that says which container belongs
 * to which service. The reconciler, the reported-state builder, the health monitor and telemetry all
 * ask {@link ownerOf} rather than reading the labels themselves.
 */

/** Labels berth sets on the containers it deploys; users may not set `berth.*` labels except the priority. */
export const SERVICE_LABEL = 'berth.service';
export const SPEC_LABEL = 'berth.spec';
export const REVISION_LABEL = 'berth.revision';
/** On the networks and volumes a deploy creates for an app: its name (App.name). */
export const APP_LABEL = 'berth.app';
const USER_BERTH_LABELS = new Set(['berth.priority']);

/** The service (and spec hash) a container was deployed for. */
export interface ServiceOwner {
  readonly service: string;
  readonly hash: string;
}

/** Which service's spec a container runs, from its labels; undefined for a container berth did not deploy. */
export function ownerOf(labels: Readonly<Record<string, string>>): ServiceOwner | undefined {
  const service = labels[SERVICE_LABEL];
  const hash = labels[SPEC_LABEL];
  return service !== undefined && hash !== undefined ? { service, hash } : undefined;
}

/** Whether a container's labels say berth deployed it for `service` with the spec `hash`. */
export const deployedFor = (labels: Readonly<Record<string, string>>, service: string, hash: string): boolean => {
  const o = ownerOf(labels);
  return o?.service === service && o.hash === hash;
};

/** The labels of a deployed container: the user's, then berth's own. */
export function ownerLabels(user: Readonly<Record<string, string>>, service: string, hash: string, revision: number): Record<string, string> {
  return { ...user, [SERVICE_LABEL]: service, [SPEC_LABEL]: hash, [REVISION_LABEL]: String(revision) };
}

/** The labels of a network or volume a deploy creates for the app `app`. */
export const appLabels = (app: string): Record<string, string> => ({ [APP_LABEL]: app });

/** The app a network or volume was created for by a deploy; undefined for one made by hand. */
export const appOf = (labels: Readonly<Record<string, string>>): string | undefined => labels[APP_LABEL];

/** Refuses user labels in berth's namespace (they would forge ownership); `field` names the key in errors. */
export function checkUserLabels(labels: Readonly<Record<string, string>>, field: string): void {
  for (const k of Object.keys(labels)) {
    if (k.startsWith('berth.') && !USER_BERTH_LABELS.has(k)) throw new BerthError('invalid', `${field}: label "${k}" is reserved for berth`);
  }
}

/** The container name for a service spec: unique per (service, spec), readable in `berth ps`. */
export const containerName = (service: string, hash: string): string => `${service}.${hash}`;
