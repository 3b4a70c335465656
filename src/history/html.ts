/**
 * `history --html`: one self-contained page (inline CSS and SVG, no script, nothing fetched) with a chart per
 * measure over the runs (rows, rejects, duration, 429s), the last run's rejects by code, and the runs as a table.
 * Charts are drawn here rather than with a charting library: every one of those loads scripts or fonts, and the page
 * must open from a file or a mail attachment with no network.
 */
import type { RunReport } from '../runner/report.js';
import { rejectsByCode } from './codes.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const nf = new Intl.NumberFormat('en-US');

/** One bar: its segments stacked bottom up. */
interface Bar {
  label: string;
  segments: { value: number; color: string }[];
  /** A failed run: marked under the axis. */
  failed?: boolean;
  title: string;
}

const W = 760;
const H = 230;
const PAD = { left: 64, right: 16, top: 30, bottom: 46 };

/** A round axis maximum at or above `max`. */
function niceMax(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  return ([1, 2, 2.5, 5, 10].map((f) => f * p).find((v) => v >= max) ?? 10 * p);
}

function axis(max: number, format: (v: number) => string): string {
  const plotH = H - PAD.top - PAD.bottom;
  let out = '';
  for (let i = 0; i <= 4; i++) {
    const y = PAD.top + plotH - (plotH * i) / 4;
    out += `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}" class="grid"/>`;
    out += `<text x="${PAD.left - 6}" y="${y + 4}" text-anchor="end">${esc(format((max * i) / 4))}</text>`;
  }
  return out;
}

/** A bar chart over the runs as SVG. */
function barChart(id: string, title: string, bars: readonly Bar[], format: (v: number) => string, legend = ''): string {
  const max = niceMax(Math.max(0, ...bars.map((b) => b.segments.reduce((s, g) => s + g.value, 0))));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, bars.length);
  const bw = Math.max(2, Math.min(40, step * 0.7));
  const every = Math.ceil(bars.length / 10);
  let marks = '';
  bars.forEach((bar, i) => {
    const x = PAD.left + i * step + (step - bw) / 2;
    let y = PAD.top + plotH;
    for (const seg of bar.segments) {
      const h = (seg.value / max) * plotH;
      if (h <= 0) continue;
      y -= h;
      marks += `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.max(1, h).toFixed(1)}" fill="${seg.color}"><title>${esc(bar.title)}</title></rect>`;
    }
    if (bar.failed) marks += `<rect x="${x.toFixed(1)}" y="${PAD.top + plotH + 3}" width="${bw.toFixed(1)}" height="5" class="failed"><title>failed</title></rect>`;
    if (i % every === 0) marks += `<text x="${(x + bw / 2).toFixed(1)}" y="${H - PAD.bottom + 22}" text-anchor="middle">${esc(bar.label)}</text>`;
  });
  return (
    `<figure id="${id}"><figcaption>${esc(title)}${legend}</figcaption>` +
    `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">` +
    `${axis(max, format)}<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${PAD.top + plotH}" y2="${PAD.top + plotH}" class="axis"/>${marks}</svg></figure>`
  );
}

/** The last run's rejects by code as horizontal bars. */
function codesChart(run: RunReport | undefined): string {
  const codes = run ? Object.entries(rejectsByCode(run)).filter(([, n]) => n > 0).sort(([, a], [, b]) => b - a) : [];
  const title = 'Rejects by code, last run';
  if (codes.length === 0) {
    const why = !run ? 'no run yet' : run.rows.rejected > 0 ? `${nf.format(run.rows.rejected)} rejected rows (this run's report has no breakdown by code)` : 'no rejected row';
    return `<figure id="chart-codes"><figcaption>${title}</figcaption><p class="none">${esc(why)}</p></figure>`;
  }
  const max = Math.max(...codes.map(([, n]) => n));
  const rowH = 26;
  const h = codes.length * rowH + 10;
  const labelW = 220;
  const rows = codes
    .map(([code, n], i) => {
      const w = ((W - labelW - 90) * n) / max;
      const y = 5 + i * rowH;
      return `<text x="${labelW - 8}" y="${y + 16}" text-anchor="end">${esc(code)}</text><rect x="${labelW}" y="${y + 3}" width="${Math.max(1, w).toFixed(1)}" height="18" fill="#d9822b"><title>${esc(`${code}: ${n}`)}</title></rect><text x="${(labelW + w + 6).toFixed(1)}" y="${y + 16}">${nf.format(n)}</text>`;
    })
    .join('');
  return `<figure id="chart-codes"><figcaption>${title}</figcaption><svg width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" role="img" aria-label="${title}">${rows}</svg></figure>`;
}

const CSS = `body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 4px}p.sub{color:#5b6475;margin:0 0 16px}figure{margin:0 0 22px}figcaption{font-weight:600;margin-bottom:4px}
svg text{font-size:11px;fill:#5b6475}.grid{stroke:#e3e6ec}.axis{stroke:#8a93a5}.failed{fill:#c0392b}
.key{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;vertical-align:baseline}p.none{color:#5b6475;font-style:italic}
table{border-collapse:collapse;font-size:12px}th,td{padding:3px 8px;border-bottom:1px solid #e3e6ec;text-align:right;white-space:nowrap}
th:first-child,th:nth-child(2),td:first-child,td.l{text-align:left}td.failed{color:#c0392b;font-weight:600}td.err{text-align:left;white-space:normal;max-width:420px}`;

const key = (color: string, text: string): string => `<span class="key" style="background:${color}"></span>${esc(text)}`;

function runsTable(runs: readonly RunReport[]): string {
  const head = '<tr><th>finished (UTC)</th><th>status</th><th>duration s</th><th>read</th><th>loaded</th><th>rejected</th><th>requests</th><th>429s</th><th>error</th></tr>';
  const body = [...runs]
    .reverse()
    .map(
      (r) =>
        `<tr><td>${esc(r.finishedAt)}</td><td class="l${r.status === 'failed' ? ' failed' : ''}">${esc(r.status)}</td><td>${(r.durationMs / 1000).toFixed(1)}</td>` +
        `<td>${nf.format(r.rows.read)}</td><td>${nf.format(r.rows.loaded)}</td><td>${nf.format(r.rows.rejected)}</td><td>${nf.format(r.requests.total)}</td>` +
        `<td>${nf.format(r.requests.throttled)}</td><td class="err">${r.error ? esc(`[${r.error.code}] ${r.error.message}`) : ''}</td></tr>`,
    )
    .join('');
  return `<table><thead>${head}</thead><tbody>${body}</tbody></table>`;
}

/** The history page of a pipeline's runs (oldest first). */
export function historyHtml(pipeline: string, runs: readonly RunReport[], generatedAt = new Date()): string {
  const label = (r: RunReport): string => r.finishedAt.slice(5, 16).replace('T', ' ');
  const bar = (r: RunReport, segments: Bar['segments'], what: string): Bar => ({ label: label(r), segments, failed: r.status === 'failed', title: `${r.finishedAt} ${r.status}: ${what}` });
  const charts = [
    barChart('chart-rows', 'Rows per run', runs.map((r) => bar(r, [{ value: r.rows.loaded, color: '#2f6fde' }, { value: r.rows.rejected, color: '#d9822b' }, { value: Math.max(0, r.rows.read - r.rows.loaded - r.rows.rejected), color: '#9aa5b8' }], `read ${r.rows.read}, loaded ${r.rows.loaded}, rejected ${r.rows.rejected}`)), (v) => nf.format(Math.round(v)), key('#2f6fde', 'loaded') + key('#d9822b', 'rejected') + key('#9aa5b8', 'other (skipped, not settled)') + key('#c0392b', 'failed run')),
    barChart('chart-rejects', 'Rejected rows per run', runs.map((r) => bar(r, [{ value: r.rows.rejected, color: '#d9822b' }], `${r.rows.rejected} rejected`)), (v) => nf.format(Math.round(v))),
    barChart('chart-duration', 'Duration per run (seconds)', runs.map((r) => bar(r, [{ value: r.durationMs / 1000, color: '#6b5bd2' }], `${(r.durationMs / 1000).toFixed(1)} s`)), (v) => (v >= 10 ? nf.format(Math.round(v)) : v.toFixed(1))),
    barChart('chart-throttled', '429s (throttled requests) per run', runs.map((r) => bar(r, [{ value: r.requests.throttled, color: '#c0392b' }], `${r.requests.throttled} 429s of ${r.requests.total} requests`)), (v) => nf.format(Math.round(v))),
    codesChart(runs.at(-1)),
  ];
  const sub = runs.length === 0 ? 'No run recorded yet.' : `${runs.length} run(s) from ${runs[0]!.finishedAt} to ${runs.at(-1)!.finishedAt}; generated ${generatedAt.toISOString()}.`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(`klaviyo-etl history: ${pipeline}`)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${CSS}</style></head>
<body><h1>${esc(pipeline)}: run history</h1><p class="sub">${esc(sub)}</p>
${charts.join('\n')}
<h2 style="font-size:16px">Runs, newest first</h2>${runsTable(runs)}
</body></html>
`;
}
