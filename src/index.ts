/**
 * klaviyo-etl as a library: everything the CLI does is a function here.
 */
export { run, type RunOptions } from './runner/index.js';
export { formatSummary, type RunReport, type RunStatus } from './runner/report.js';
export { EXIT, exitCodeForStatus, exitCodeForError, exitCodeForReport } from './core/exit-codes.js';
export { pipelineStatus, formatStatus, type PipelineStatus } from './status.js';
export { schedule, type ScheduleOptions, type Scheduler, type ScheduleEvent } from './scheduler/index.js';
export { pipelineHistory, formatHistory, historyHtml, type HistoryOptions } from './history/index.js';
export { resetPipeline, pipelineResetPlan, formatResetPlan, type ResetPlan, type ResetOptions } from './reset.js';
export { initPipeline, type InitOptions, type InitResult } from './init/index.js';
export { checkPipeline, formatCheckReport, type CheckOptions, type CheckReport, type CheckResult } from './check/index.js';
export {
  loadPipelineFile,
  loadPipelineFileOrThrow,
  loadPipelineText,
  validatePipelineFiles,
} from './config/load.js';
export { pipelineJsonSchema } from './config/json-schema.js';
export { checkSourceData, validatePipelineData, type DataCheck, type DataWarning } from './runner/preflight.js';
export { formatProblem, type Problem } from './config/problem.js';
export { Pipeline, pipelineSchema, type PipelineConfig, type PipelineInput } from './config/pipeline.js';
export { BUILTIN_COMPONENTS, withComponents } from './components/index.js';
export type {
  Components,
  DestinationCapabilities,
  DestinationDefinition,
  SourceCapabilities,
  SourceDefinition,
  TransformCapabilities,
  TransformDefinition,
} from './components/types.js';
export type { Destination, DestinationContext, RequestPreview } from './destinations/types.js';
export type { ExtractContext, SourceReader } from './extract/types.js';
export type { TransformContext, Transformer } from './transform/types.js';
export { startEmulator, type EmulatorHandle, type EmulatorOptions, type EmulatorStateSummary } from './emulator/index.js';
export { EtlError, ERROR_CODES, WARNING_CODES, isEtlError, type ErrorCode, type RunWarning, type WarningCode } from './core/errors.js';
export { jsonLogger, silentLogger, type Logger } from './core/logger.js';
export type { LoadItem, Reject, SourcePosition, SourceRecord } from './core/record.js';
export type { RunStats } from './core/stats.js';
export { ENDPOINTS, TIERS, DEFAULT_REVISION } from './klaviyo/endpoints.js';
export { createTransformer } from './transform/registry.js';
export { getExtractor } from './extract/registry.js';
export { createKlaviyoLoader } from './load/index.js';
export { connectKlaviyo } from './klaviyo/connect.js';
export { KlaviyoClient } from './klaviyo/client.js';
export { RateLimiter } from './klaviyo/rate-limiter.js';
export { retryDelay } from './klaviyo/retry.js';
