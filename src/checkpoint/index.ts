export { AckTracker, type AckTrackerOptions, type SeqRef } from './ack-tracker.js';
export {
  CHECKPOINT_VERSION,
  CHECKPOINT_STATUSES,
  CheckpointSchema,
  canonicalJson,
  outputAffectingConfig,
  parseCheckpoint,
  pipelineHash,
  redactCredentials,
  redactSecrets,
  serializeCheckpoint,
  type Checkpoint,
  type CheckpointStatus,
  type RejectsState,
} from './format.js';
export { isStale, processAlive, type Lock, type LockEnvironment, type LockInfo } from './lock.js';
export {
  LocalCheckpointStore,
  S3CheckpointStore,
  createCheckpointStore,
  type CheckpointStore,
  type CheckpointStoreContext,
  type LocalCheckpointStoreOptions,
  type S3CheckpointStoreOptions,
} from './store.js';
export {
  Checkpointer,
  type CheckpointUpdate,
  type CheckpointerOptions,
  type ResumeState,
  type StartOptions,
} from './checkpointer.js';
export { planResend } from './resend.js';
