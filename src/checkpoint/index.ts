export { AckTracker } from './ack-tracker.js';
export { mappingVersion, parseCheckpoint, pipelineHash, type Checkpoint } from './format.js';
export { createCheckpointStore } from './store.js';
export { Checkpointer, type ResumeState } from './checkpointer.js';
export { planResend } from './resend.js';
