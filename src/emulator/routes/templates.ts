/** Templates: `GET /api/templates` (10 per page, filters and sorts per spec) and `GET /api/templates/{id}`. */
import { isoMicros, type Reply } from '../http.js';
import { pickFields, sparseFields } from '../query.js';
import type { TemplateRecord } from '../catalog.js';
import type { RequestContext, RouteModule } from '../router.js';
import { notFound } from './common.js';
import { collectionPage, collectionReply, resourceReply, type FieldValue } from './catalog-common.js';

/**
 * A template resource. `definition` (asked for with `additional-fields[template]=definition`) is null: Klaviyo
 * has one only for SYSTEM_DRAGGABLE templates, which the emulator does not hold.
 */
export function templateResource(t: TemplateRecord, baseUrl: string, fields: Set<string> | null, definition: boolean): Record<string, unknown> {
  const attrs: Record<string, unknown> = {
    name: t.name,
    editor_type: t.editorType,
    html: t.html,
    text: t.text,
    amp: t.amp,
    created: isoMicros(t.created),
    updated: isoMicros(t.updated),
  };
  if (definition) attrs.definition = null;
  const picked = pickFields(attrs, fields);
  if (definition) picked.definition = null;
  return { type: 'template', id: t.id, attributes: picked, links: { self: `${baseUrl}/api/templates/${t.id}/` } };
}

function wantsDefinition(ctx: RequestContext): boolean {
  return (ctx.query.get('additional-fields[template]') ?? '').split(',').some((s) => s.trim() === 'definition');
}

function templateField(t: TemplateRecord, field: string): FieldValue {
  if (field === 'created') return t.created;
  if (field === 'updated') return t.updated;
  return field === 'id' ? t.id : field === 'name' ? t.name : null;
}

function listTemplates(ctx: RequestContext): Reply {
  const { page, links } = collectionPage(ctx, ctx.account.catalog.templates.values(), {
    endpoint: 'GET /api/templates',
    get: templateField,
    dates: new Set(['created', 'updated']),
  });
  const base = ctx.emulator.baseUrl;
  const fields = sparseFields(ctx.query, 'template');
  const def = wantsDefinition(ctx);
  return collectionReply(
    page.map((t) => templateResource(t, base, fields, def)),
    links,
    null,
  );
}

export const templateRoutes: RouteModule = [
  { method: 'GET', path: '/api/templates', handler: listTemplates },
  {
    method: 'GET',
    path: '/api/templates/{id}',
    handler(ctx) {
      const t = ctx.account.catalog.templates.get(ctx.params.id!);
      if (!t) throw notFound('template', ctx.params.id!);
      return resourceReply(templateResource(t, ctx.emulator.baseUrl, sparseFields(ctx.query, 'template'), wantsDefinition(ctx)), null);
    },
  },
];
