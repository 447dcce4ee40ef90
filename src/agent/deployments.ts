// The deployments table as the agent uses it: the store's generic records with the protocol's
// DesiredState and ErrorInfo as payloads. The agent, the reconciler and `berth deploy` name this; above
// the store only the composition root (src/root.ts) names the generic class, to build the one instance.
import type { DesiredState, ErrorInfo } from '../protocol/types.js';
import type { DeploymentRecords as StoredDeployments } from '../store/deployments.js';

export type DeploymentRecords = StoredDeployments<DesiredState, ErrorInfo>;
