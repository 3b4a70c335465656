/**
 * Bulk jobs of an interrupted run that the service no longer knows (Klaviyo forgets a job 7 days after it ends):
 * a resumed run reads and sends their rows again (an upsert; safe to repeat), and the checkpoint moves back so that
 * a crash now does not skip them. The checkpoint records where each pending job's rows begin (`pendingJobsAfter`).
 */
import { AckTracker, planResend } from '../checkpoint/index.js';
import type { RunWarning } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SourcePosition } from '../core/record.js';
import type { Destination } from '../destinations/types.js';
import type { RunSetup } from './setup.js';

/** Where the rows of each bulk job begin (the tracker's position when the job was acknowledged). */
export class JobStarts {
  readonly #after: Map<string, SourcePosition | null>;

  constructor(resumed: Record<string, SourcePosition | null> | undefined) {
    this.#after = new Map(Object.entries(resumed ?? {}));
  }

  /** A job was acknowledged: its rows begin after the tracker's position now (before they are settled). */
  acknowledged(jobId: string, position: SourcePosition | undefined): void {
    this.#after.set(jobId, position ?? null);
  }

  /** `pendingJobsAfter` of the checkpoint for these pending jobs. */
  of(pending: readonly string[]): Record<string, SourcePosition | null> {
    return Object.fromEntries(pending.map((id) => [id, this.#after.get(id) ?? null]));
  }
}

/**
 * Ask the destination which of the resumed jobs it forgot; when some are, move the run's start (and the
 * checkpoint) back before their rows. Returns the warning for the report, if any.
 */
export async function resendForgottenJobs(setup: RunSetup, destination: Destination, jobStarts: JobStarts, logger: Logger): Promise<RunWarning | undefined> {
  const resume = setup.resume;
  if (!resume?.resumed || resume.resumeJobs.length === 0 || !destination.forgottenJobs) return undefined;
  const forgotten = await destination.forgottenJobs();
  if (forgotten.length === 0) return undefined;
  const plan = planResend(forgotten, resume.resumeJobs, resume.resumeJobsAfter);
  destination.dropJobs?.(plan.drop);
  setup.startAfter = plan.startAfter;
  setup.firstSeq = plan.startAfter ? plan.startAfter.seq + 1 : 0;
  setup.tracker = new AckTracker({ initial: setup.startAfter, startSeq: setup.firstSeq });
  setup.rejects.rewind(setup.tracker, setup.firstSeq);
  setup.skipped.rewind(setup.tracker, setup.firstSeq);
  setup.checkpointer?.rewind(setup.startAfter, plan.keep, jobStarts.of(plan.keep));
  const resent = (resume.startAfter?.seq ?? -1) - (setup.startAfter?.seq ?? -1);
  logger.warn('profile import jobs unknown to Klaviyo; sending their rows again', { jobs: forgotten, after: setup.startAfter?.seq, rows: resent });
  const message =
    `Klaviyo no longer knows ${forgotten.length} profile import job(s) of the interrupted run (${forgotten.join(', ')}; ` +
    `it forgets jobs 7 days after they end): their import errors are lost, and the ${resent} row(s) after ` +
    `${setup.startAfter ? `seq ${setup.startAfter.seq}` : 'the start'} that the checkpoint had passed were sent again`;
  return { code: 'KLAVIYO_JOBS_FORGOTTEN', message };
}
