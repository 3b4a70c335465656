/**
 * Query-parameter rules of the catalog operations (campaigns, campaign messages, flows, flow actions, flow messages,
 * templates) as the spec (revision 2026-07-15) states them; generated from the spec's parameters and checked against
 * its copy by test/unit/emulator/params.test.ts like the rest of QUERY_RULES (src/emulator/params.ts).
 */
import type { QueryRules } from './params.js';

const at = (prefix: string, leaves: readonly string[]): string[] => leaves.map((l) => `${prefix}.${l}`);
const EQ_ANY = ['equals', 'any'] as const;
const RANGE = ['greater-or-equal', 'greater-than', 'less-or-equal', 'less-than'] as const;
const EQ_RANGE = ['equals', ...RANGE] as const;
const TEXT = ['contains', 'ends-with', 'equals', 'starts-with'] as const;

const CAMPAIGN_MESSAGE_FIELDS: readonly string[] = [
  'created_at', 'definition', 'id', 'send_times', 'updated_at', 'definition.options.badge', 'definition.options.on_open',
  'definition.options.play_sound', 'definition.options.badge.badge_options', 'definition.options.badge.display',
  'definition.options.badge.badge_options.badge_config', 'definition.options.badge.badge_options.set_from_property',
  'definition.options.badge.badge_options.value',
  ...at('definition', ['channel', 'content', 'kv_pairs', 'label', 'notification_type', 'options', 'render_options']),
  ...at('definition.content', [
    'action_buttons', 'bcc_email', 'body', 'cc_email', 'dynamic_image', 'from_email', 'from_label', 'media_url', 'preview_text', 'reply_to_email',
    'subject', 'title',
  ]),
  ...at('definition.options.on_open', ['android_deep_link', 'ios_deep_link', 'type', 'web_url']),
  ...at('definition.render_options', ['add_info_link', 'add_opt_out_language', 'add_org_prefix', 'shorten_links']),
];
const CAMPAIGN_FIELDS: readonly string[] = [
  'archived', 'audiences', 'created_at', 'id', 'name', 'scheduled_at', 'send_options', 'send_strategy', 'send_time', 'status', 'tracking_options',
  'updated_at', 'audiences.excluded', 'audiences.included', 'send_options.use_smart_sending', 'send_strategy.options.is_local',
  'send_strategy.options.send_past_recipients_immediately',
  ...at('send_strategy', ['date', 'datetime', 'method', 'options', 'throttle_percentage']),
  ...at('tracking_options', ['add_tracking_params', 'custom_tracking_params', 'is_tracking_clicks', 'is_tracking_opens']),
];
const TAG_FIELDS: readonly string[] = [
  'id', 'name',
];
const IMAGE_FIELDS: readonly string[] = [
  'format', 'hidden', 'id', 'image_url', 'name', 'size', 'updated_at',
];
const TEMPLATE_FIELDS: readonly string[] = [
  'amp', 'created', 'editor_type', 'html', 'id', 'name', 'text', 'updated',
];
const FLOW_ACTION_FIELDS: readonly string[] = [
  'created', 'definition', 'id', 'updated', 'definition.data.action_output_filter.condition_groups',
  'definition.data.current_experiment.automatic_winner_selection_settings.automatic_end_date',
  'definition.data.current_experiment.automatic_winner_selection_settings.automatic_end_statistical_certainty',
  'definition.data.current_experiment.automatic_winner_selection_settings.enabled', 'definition.data.main_action.data.message',
  'definition.data.main_action.data.status', 'definition.data.main_action.data.message.additional_filters.condition_groups',
  'definition.data.main_action.data.message.badge_options.badge_config', 'definition.data.main_action.data.message.badge_options.set_from_property',
  'definition.data.main_action.data.message.badge_options.value', 'definition.data.main_action.links.next',
  'definition.data.message.additional_filters.condition_groups', 'definition.data.message.badge_options.badge_config',
  'definition.data.message.badge_options.set_from_property', 'definition.data.message.badge_options.value',
  'definition.data.profile_filter.condition_groups', 'definition.data.trigger_filter.condition_groups', 'definition.links.next',
  'definition.links.next_if_false', 'definition.links.next_if_true',
  ...at('definition', ['data', 'id', 'links', 'temporary_id', 'type']),
  ...at('definition.data', [
    'action_output_filter', 'branches', 'current_experiment', 'delay_until_time', 'delay_until_weekdays', 'experiment_status', 'list_id',
    'main_action', 'message', 'name', 'on_execution', 'profile_filter', 'profile_operations', 'secondary_value', 'service_configuration', 'status',
    'target_days', 'target_time', 'timezone', 'trigger_filter', 'trigger_id', 'trigger_subtype', 'trigger_type', 'unit', 'value',
  ]),
  ...at('definition.data.current_experiment', [
    'allocations', 'automatic_winner_selection_settings', 'id', 'name', 'started', 'variations', 'winner_metric',
  ]),
  ...at('definition.data.main_action', ['data', 'id', 'links', 'temporary_id', 'type']),
  ...at('definition.data.main_action.data.message', [
    'action_buttons', 'add_info_link', 'add_opt_out_language', 'add_org_prefix', 'add_tracking_params', 'additional_filters', 'android_link',
    'badge', 'badge_options', 'bcc_email', 'body', 'cc_email', 'conversion_metric_id', 'custom_tracking_params', 'dynamic_image', 'from_email',
    'from_label', 'id', 'image_id', 'include_contact_card', 'ios_link', 'kv_pairs', 'message_hierarchy', 'name', 'on_open', 'preview_text',
    'push_type', 'reply_to_email', 'shorten_links', 'smart_sending_enabled', 'sms_quiet_hours_enabled', 'sound', 'subject_line', 'template_id',
    'title', 'transactional', 'vendor_id', 'video_asset_id', 'web_url',
  ]),
  ...at('definition.data.message', [
    'action_buttons', 'add_info_link', 'add_opt_out_language', 'add_org_prefix', 'add_tracking_params', 'additional_filters', 'android_link',
    'badge', 'badge_options', 'bcc_email', 'body', 'cc_email', 'conversion_metric_id', 'custom_tracking_params', 'dynamic_image', 'from_email',
    'from_label', 'headers', 'id', 'image_id', 'include_contact_card', 'ios_link', 'kv_pairs', 'message_hierarchy', 'name', 'on_open',
    'preview_text', 'push_type', 'reply_to_email', 'shorten_links', 'smart_sending_enabled', 'sms_quiet_hours_enabled', 'sound', 'subject_line',
    'template_id', 'title', 'to_emails', 'transactional', 'url', 'vendor_id', 'video_asset_id', 'web_url',
  ]),
  ...at('definition.data.service_configuration', ['event_key', 'event_payload', 'report_id', 'service_method_type', 'tracking_company_id']),
];
const FLOW_FIELDS: readonly string[] = [
  'archived', 'created', 'id', 'name', 'status', 'trigger_type', 'updated',
];
const FLOW_DETAIL_FIELDS: readonly string[] = [
  'archived', 'created', 'definition', 'id', 'name', 'status', 'trigger_type', 'updated', 'definition.profile_filter.condition_groups',
  'definition.reentry_criteria.duration', 'definition.reentry_criteria.unit',
  ...at('definition', ['actions', 'entry_action_id', 'profile_filter', 'reentry_criteria', 'triggers']),
];
const FLOW_MESSAGE_FIELDS: readonly string[] = [
  'channel', 'created', 'definition', 'id', 'updated', 'definition.additional_filters.condition_groups', 'definition.badge_options.badge_config',
  'definition.badge_options.set_from_property', 'definition.badge_options.value',
  ...at('definition', [
    'action_buttons', 'add_info_link', 'add_opt_out_language', 'add_org_prefix', 'add_tracking_params', 'additional_filters', 'android_link',
    'badge', 'badge_options', 'bcc_email', 'body', 'cc_email', 'conversion_metric_id', 'custom_tracking_params', 'dynamic_image', 'from_email',
    'from_label', 'headers', 'id', 'image_id', 'include_contact_card', 'ios_link', 'kv_pairs', 'message_hierarchy', 'name', 'on_open',
    'preview_text', 'push_type', 'reply_to_email', 'shorten_links', 'smart_sending_enabled', 'sms_quiet_hours_enabled', 'sound', 'subject_line',
    'template_id', 'title', 'to_emails', 'transactional', 'url', 'vendor_id', 'video_asset_id', 'web_url',
  ]),
];
const TEMPLATE_DETAIL_FIELDS: readonly string[] = [
  'amp', 'created', 'definition', 'editor_type', 'html', 'id', 'name', 'text', 'updated', 'definition.body.properties.css_class',
  'definition.body.properties.id', 'definition.body.styles.background_color', 'definition.body.styles.width',
  ...at('definition', ['body', 'id', 'styles', 'template_id']),
  ...at('definition.body', ['id', 'properties', 'sections', 'styles']),
];

export const CATALOG_QUERY_RULES = {
  'GET /api/campaigns': {
    fields: { 'campaign-message': CAMPAIGN_MESSAGE_FIELDS, campaign: CAMPAIGN_FIELDS, tag: TAG_FIELDS },
    include: ['campaign-messages', 'tags'],
    filter: { id: ['any'], 'messages.channel': ['equals'], name: ['contains'], status: EQ_ANY, archived: ['equals'], created_at: RANGE, scheduled_at: RANGE, updated_at: RANGE },
    sort: ['created_at', '-created_at', 'id', '-id', 'name', '-name', 'scheduled_at', '-scheduled_at', 'updated_at', '-updated_at'],
    page: { def: 100, max: 100 },
  },
  'GET /api/campaigns/{id}': {
    fields: { 'campaign-message': CAMPAIGN_MESSAGE_FIELDS, campaign: CAMPAIGN_FIELDS, tag: TAG_FIELDS },
    include: ['campaign-messages', 'tags'],
  },
  'GET /api/campaigns/{id}/campaign-messages': {
    fields: { 'campaign-message': CAMPAIGN_MESSAGE_FIELDS, campaign: CAMPAIGN_FIELDS, image: IMAGE_FIELDS, template: TEMPLATE_FIELDS },
    include: ['campaign', 'image', 'template'],
  },
  'GET /api/campaign-messages/{id}': {
    fields: { 'campaign-message': CAMPAIGN_MESSAGE_FIELDS, campaign: CAMPAIGN_FIELDS, image: IMAGE_FIELDS, template: TEMPLATE_FIELDS },
    include: ['campaign', 'image', 'template'],
  },
  'GET /api/flows': {
    fields: { 'flow-action': FLOW_ACTION_FIELDS, flow: FLOW_FIELDS, tag: TAG_FIELDS },
    include: ['flow-actions', 'tags'],
    filter: { id: ['any'], name: TEXT, status: ['equals'], archived: ['equals'], created: EQ_RANGE, updated: EQ_RANGE, trigger_type: ['equals'] },
    sort: ['created', '-created', 'id', '-id', 'name', '-name', 'status', '-status', 'trigger_type', '-trigger_type', 'updated', '-updated'],
    page: { def: 50, max: 50 },
  },
  'GET /api/flows/{id}': {
    fields: { 'flow-action': FLOW_ACTION_FIELDS, flow: FLOW_DETAIL_FIELDS, tag: TAG_FIELDS },
    additional: { flow: ['definition'] },
    include: ['flow-actions', 'tags'],
  },
  'GET /api/flows/{id}/flow-actions': {
    fields: { 'flow-action': FLOW_ACTION_FIELDS },
    filter: { id: ['any'], action_type: EQ_ANY, status: ['equals'], created: EQ_RANGE, updated: EQ_RANGE },
    sort: ['action_type', '-action_type', 'created', '-created', 'id', '-id', 'status', '-status', 'updated', '-updated'],
    page: { def: 50, max: 50 },
  },
  'GET /api/flow-actions/{id}': {
    fields: { 'flow-action': FLOW_ACTION_FIELDS, 'flow-message': FLOW_MESSAGE_FIELDS, flow: FLOW_FIELDS },
    include: ['flow', 'flow-messages'],
  },
  'GET /api/flow-actions/{id}/flow-messages': {
    fields: { 'flow-message': FLOW_MESSAGE_FIELDS },
    filter: { id: ['any'], name: TEXT, created: EQ_RANGE, updated: EQ_RANGE },
    sort: ['created', '-created', 'id', '-id', 'name', '-name', 'updated', '-updated'],
    page: { def: 50, max: 50 },
  },
  'GET /api/flow-messages/{id}': {
    fields: { 'flow-action': FLOW_ACTION_FIELDS, 'flow-message': FLOW_MESSAGE_FIELDS, template: TEMPLATE_FIELDS },
    include: ['flow-action', 'template'],
  },
  'GET /api/templates': {
    fields: { template: TEMPLATE_DETAIL_FIELDS },
    additional: { template: ['definition'] },
    filter: { id: EQ_ANY, name: ['any', 'contains', 'equals'], created: EQ_RANGE, updated: EQ_RANGE },
    sort: ['created', '-created', 'id', '-id', 'name', '-name', 'updated', '-updated'],
    page: { def: 10, max: 10 },
  },
  'GET /api/templates/{id}': {
    fields: { template: TEMPLATE_DETAIL_FIELDS },
    additional: { template: ['definition'] },
  },
} as const satisfies Record<string, QueryRules>;
