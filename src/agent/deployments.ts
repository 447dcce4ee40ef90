// The deployments table as the agent uses it: the store's generic records with the protocol's
// DesiredState and ErrorInfo as payloads. The agent, the reconciler and `berth deploy` name these.
import type { DesiredState, ErrorInfo } from '../protocol/types.js';
import type { DeploymentRecord as StoredDeployment, DeploymentRecords as StoredDeployments } from '../store/deployments.js';

export type DeploymentRecord = StoredDeployment<DesiredState, ErrorInfo>;
export type DeploymentRecords = StoredDeployments<DesiredState, ErrorInfo>;
