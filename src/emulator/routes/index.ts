/**
 * Every route module of the emulator, registered explicitly (no discovery by file name). To add an area
 * (lists, segments, subscriptions…): write `src/emulator/routes/<area>.ts` exporting a `RouteModule` and append
 * it here. See the comment at the top of src/emulator/router.ts for the route API.
 */
import type { RouteModule } from '../router.js';
import { bulkImportRoutes } from './bulk-import.js';
import { campaignRoutes } from './campaigns.js';
import { eventRoutes } from './events.js';
import { flowRoutes } from './flows.js';
import { internalRoutes } from './internal.js';
import { listRoutes } from './lists.js';
import { metricRoutes } from './metrics.js';
import { profileRoutes } from './profiles.js';
import { subscriptionRoutes } from './subscriptions.js';
import { suppressionRoutes } from './suppressions.js';
import { templateRoutes } from './templates.js';

export const ROUTE_MODULES: readonly RouteModule[] = [profileRoutes, bulkImportRoutes, eventRoutes, metricRoutes, subscriptionRoutes, suppressionRoutes, listRoutes, campaignRoutes, flowRoutes, templateRoutes, internalRoutes];
