/**
 * The compose stage (issue 15): a compose document or a desired state → a validated, normalized app
 * model, parsed once. model.ts holds the types, normalize.ts the one normalizer, file.ts the one file
 * reader, labels.ts which container belongs to which service, render.ts the model as a compose document.
 */
export type { App, AppNetwork, AppService, AppUpdatePolicy, AppVolume } from './model.js';
export type { Healthcheck } from './healthcheck.js';
export { AppCache } from './cache.js';
export { appFromMessage, atRevision, DEFAULT_UPDATE, normalizeDesired } from './normalize.js';
export { readComposeFile } from './file.js';
export { containerName, deployedFor, ownerOf, SERVICE_LABEL, SPEC_LABEL, REVISION_LABEL, type ServiceOwner } from './labels.js';
export { composeConfig, composeDocument } from './render.js';
