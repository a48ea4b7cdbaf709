// `npm start`: the gateway demo when this machine can run it (root,
// /dev/net/tun, ip and curl: a namespace fetches from this host through a
// gateway), otherwise the in-process example, saying why.
import { accessSync, constants } from 'node:fs';
import { execFileSync } from 'node:child_process';

function gatewayDemoUnavailable() {
  if (process.platform !== 'linux') return 'the gateway demo uses Linux network namespaces';
  if (process.getuid?.() !== 0) return 'the gateway demo needs root (it creates a network namespace and a TAP device)';
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return 'the gateway demo needs /dev/net/tun';
  }
  for (const tool of ['ip', 'curl']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `the gateway demo needs ${tool} (apt-get install ${tool === 'ip' ? 'iproute2' : tool})`;
    }
  }
  return null;
}

const why = gatewayDemoUnavailable();
if (why === null) {
  await import('./gateway-namespace-curl.js');
} else {
  console.log(`${why}; running the in-process example instead.`);
  await import('./two-stacks-http.js');
}
