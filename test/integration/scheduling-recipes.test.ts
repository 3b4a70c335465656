/**
 * The scheduling recipes of docs/scheduling.md (files in deploy/), tried as far as this machine allows: the systemd
 * units pass `systemd-analyze verify`; the Kubernetes manifests validate against the API's schemas (kubernetes-models:
 * `kubectl apply --dry-run` needs a cluster) and the CronJob has what the recipe promises; the pipelines in the
 * ConfigMap validate; the crontab lines parse; the GitHub Actions workflow has a schedule, concurrency and secrets.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { parseShard } from '../../src/core/shard.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPipelineText } from '../../src/config/load.js';
import { ROOT } from '../helpers/cli.js';

const DEPLOY = path.join(ROOT, 'deploy');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-recipes-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('systemd timer', () => {
  it('the template units pass systemd-analyze verify (instantiated for a pipeline)', async () => {
    for (const suffix of ['service', 'timer']) await copyFile(path.join(DEPLOY, 'systemd', `klaviyo-etl@.${suffix}`), path.join(dir, `klaviyo-etl@customers.${suffix}`));
    const r = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile('systemd-analyze', ['verify', '--man=no', path.join(dir, 'klaviyo-etl@customers.timer'), path.join(dir, 'klaviyo-etl@customers.service')], (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout + stderr }),
      ),
    );
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
    const service = await readFile(path.join(DEPLOY, 'systemd', 'klaviyo-etl@.service'), 'utf8');
    expect(service).toMatch(/^SuccessExitStatus=3$/m);
    expect(service).toMatch(/^KillSignal=SIGTERM$/m);
    expect(service).toMatch(/^ExecStart=.*klaviyo-etl run \/etc\/klaviyo-etl\/pipelines\/%i\.yaml/m);
  });
});

/** The kubernetes-models class for a manifest's apiVersion and kind. */
async function modelOf(apiVersion: string, kind: string): Promise<new (data: unknown) => { validate(): void }> {
  const modules: Record<string, () => Promise<Record<string, unknown>>> = {
    v1: () => import('kubernetes-models/v1'),
    'batch/v1': () => import('kubernetes-models/batch/v1'),
  };
  const load = modules[apiVersion];
  if (!load) throw new Error(`no model for ${apiVersion}`);
  const model = (await load())[kind];
  if (typeof model !== 'function') throw new Error(`no model for ${apiVersion} ${kind}`);
  return model as new (data: unknown) => { validate(): void };
}

describe('Kubernetes CronJob', () => {
  it('every manifest validates against the Kubernetes API schema', async () => {
    const files = (await readdir(path.join(DEPLOY, 'k8s'))).filter((f) => f.endsWith('.yaml'));
    expect(files.sort()).toEqual(['cronjob.yaml', 'indexed-job.yaml', 'pipelines-configmap.yaml', 'secret.yaml', 'serviceaccount.yaml']);
    for (const f of files) {
      for (const doc of parseAllDocuments(await readFile(path.join(DEPLOY, 'k8s', f), 'utf8'))) {
        const obj = doc.toJS() as { apiVersion: string; kind: string };
        const Model = await modelOf(obj.apiVersion, obj.kind);
        expect(() => new Model(obj).validate(), f).not.toThrow();
      }
    }
  });

  it('a broken manifest fails validation (the validator is not a no-op)', async () => {
    const Model = await modelOf('batch/v1', 'CronJob');
    expect(() => new Model({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'x' }, spec: { schedule: 5, jobTemplate: {} } }).validate()).toThrow();
  });

  it('the CronJob forbids overlaps, takes secrets from a Secret, shares limits through Redis and runs as non-root', async () => {
    const cron = parse(await readFile(path.join(DEPLOY, 'k8s', 'cronjob.yaml'), 'utf8'));
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    const pod = cron.spec.jobTemplate.spec.template.spec;
    const container = pod.containers[0];
    expect(container.envFrom).toEqual([{ secretRef: { name: 'klaviyo-etl' } }]);
    expect(container.env.map((e: { name: string }) => e.name)).toContain('KLAVIYO_ETL_REDIS_URL');
    expect(JSON.stringify(container)).not.toMatch(/pk_/);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.restartPolicy).toBe('Never');
    expect(container.args.slice(0, 2)).toEqual(['run', '/pipelines/customers.yaml']);
  });

  it('the Indexed Job runs one shard per completion index (k+1 of completions), sharing limits through Redis', async () => {
    const job = parse(await readFile(path.join(DEPLOY, 'k8s', 'indexed-job.yaml'), 'utf8'));
    expect(job.spec.completionMode).toBe('Indexed');
    const n = job.spec.completions as number;
    const container = job.spec.template.spec.containers[0];
    expect(container.command).toEqual(['sh', '-c']);
    const script = container.args[0] as string;
    expect(script).toContain(`--shard "$((JOB_COMPLETION_INDEX + 1))/${n}"`);
    expect(script).toMatch(/^exec node \/app\/bin\/klaviyo-etl\.js run /); // the image's entrypoint (Dockerfile)
    // what each pod's shell makes of it: shards 1/n … n/n, each a valid --shard value
    for (let k = 0; k < n; k++) {
      const echoed = execFileSync('sh', ['-c', script.replace(/^exec node \S+/, 'printf "%s\\n"')], { env: { JOB_COMPLETION_INDEX: String(k) }, encoding: 'utf8' }).split('\n');
      const value = echoed[echoed.indexOf('--shard') + 1]!;
      expect(value).toBe(`${k + 1}/${n}`);
      expect(parseShard(value)).toEqual({ index: k + 1, count: n });
    }
    expect(container.env.map((e: { name: string }) => e.name)).toContain('KLAVIYO_ETL_REDIS_URL');
    expect(job.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
  });

  it('the ConfigMap\'s pipelines validate and checkpoint to S3', async () => {
    const cm = parse(await readFile(path.join(DEPLOY, 'k8s', 'pipelines-configmap.yaml'), 'utf8')) as { data: Record<string, string> };
    for (const [name, text] of Object.entries(cm.data)) {
      const { problems, config } = loadPipelineText(text, { file: name, dir, env: {} });
      expect(problems, name).toEqual([]);
      expect(config!.checkpoint.store).toBe('s3');
    }
  });
});

describe('system cron', () => {
  it('each job line has five time fields, a user and a klaviyo-etl run under flock', async () => {
    const lines = (await readFile(path.join(DEPLOY, 'cron', 'klaviyo-etl.cron'), 'utf8')).split('\n').filter((l) => l.trim() && !l.startsWith('#') && !/^\w+=/.test(l));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const [m, h, dom, mon, dow, user, ...command] = line.split(/\s+/);
      for (const field of [m, h, dom, mon, dow]) expect(field).toMatch(/^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$/);
      expect(user).toBe('klaviyo-etl');
      expect(command.join(' ')).toMatch(/flock -n \S+ klaviyo-etl run \S+\.yaml/);
    }
  });
});

describe('GitHub Actions', () => {
  it('the example workflow is scheduled, never overlaps, and takes the key from secrets (not active in this repository)', async () => {
    const wf = parse(await readFile(path.join(DEPLOY, 'github-actions', 'klaviyo-etl-nightly.yml'), 'utf8'));
    expect(wf.on.schedule[0].cron).toMatch(/^\S+ \S+ \S+ \S+ \S+$/);
    expect(wf.concurrency.group).toBeTruthy();
    expect(wf.concurrency['cancel-in-progress']).toBe(false);
    const steps = wf.jobs.run.steps as { run?: string; env?: Record<string, string> }[];
    expect(steps.some((s) => s.run?.startsWith('klaviyo-etl check'))).toBe(true);
    expect(steps.find((s) => s.run?.startsWith('klaviyo-etl run'))!.env!.KLAVIYO_API_KEY).toBe('${{ secrets.KLAVIYO_API_KEY }}');
  });
});
