#!/usr/bin/env node
// The AWS SDK this package pins (3.1175.0, which supports Node >= 20) prints a NodeVersionSupportWarning on Node < 22
// at the first S3 client: its releases published after January 2027 will need Node 22. That is news for whoever
// upgrades the SDK, not for a user of this version, so the CLI silences it (the SDK's own switch); set the variable
// to "false" to see it. Node versions the package supports: package.json `engines`, README "Install".
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import('../dist/cli/main.js').then((m) => m.main(process.argv.slice(2)));
