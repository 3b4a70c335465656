/**
 * Metrics: created on first use by events (or seeded); `GET /api/metrics` (200 per page) and `GET /api/metrics/{id}`,
 * with `include=flow-triggers` (the flows a metric triggers).
 */
import { collectionLinks, conditionValues, parseFilter, readCursor, sparseFields } from '../query.js';
import { API_INTEGRATION, metricResource } from '../resources.js';
import type { RouteModule } from '../router.js';
import { notFound } from './common.js';
import { includeFlowTriggers } from './flows.js';

const PAGE = 200;

export const metricRoutes: RouteModule = [
  {
    method: 'GET',
    path: '/api/metrics',
    handler(ctx) {
      const conds = parseFilter(ctx.query.get('filter'), { 'integration.name': ['equals'], 'integration.category': ['equals'] });
      const ok = conds.every((c) => conditionValues(c).includes(c.field === 'integration.name' ? API_INTEGRATION.name : API_INTEGRATION.category));
      const all = ok ? [...ctx.account.metricsByName.values()] : [];
      const pos = readCursor(ctx.query);
      const base = ctx.emulator.baseUrl;
      const fields = sparseFields(ctx.query, 'metric');
      const data = all.slice(pos, pos + PAGE).map((m) => metricResource(m, base, fields));
      const included = includeFlowTriggers(ctx, data, 'metric');
      const links = collectionLinks(base, ctx.path, ctx.query, pos + PAGE < all.length ? pos + PAGE : null);
      return { status: 200, body: included ? { data, links, included } : { data, links } };
    },
  },
  {
    method: 'GET',
    path: '/api/metrics/{id}',
    handler(ctx) {
      const m = ctx.account.metricsById.get(ctx.params.id!);
      if (!m) throw notFound('metric', ctx.params.id!);
      const data = metricResource(m, ctx.emulator.baseUrl, sparseFields(ctx.query, 'metric'));
      const included = includeFlowTriggers(ctx, [data], 'metric');
      return { status: 200, body: included ? { data, included } : { data } };
    },
  },
];
