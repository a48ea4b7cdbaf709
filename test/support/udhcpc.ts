import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A udhcpc script: logs each event with the lease udhcpc read, one line of
 * key=value pairs, and with `apply` configures the interface as a
 * distribution's default.script would: address, MTU, default route.
 */
export function udhcpcScript(dir: string, name: string, apply: boolean): { path: string; events: () => Record<string, string>[] } {
  const log = join(dir, `${name}.log`);
  const path = join(dir, `${name}.sh`);
  writeFileSync(log, '');
  writeFileSync(path, `#!/bin/sh
echo "event=$1 ip=$ip mask=$mask subnet=$subnet broadcast=$broadcast router=$router dns=$dns domain=$domain mtu=$mtu lease=$lease serverid=$serverid" >> '${log}'
${apply ? `case "$1" in
  deconfig) ip -4 addr flush dev "$interface" ;;
  bound|renew)
    ip addr replace "$ip/$mask" broadcast "$broadcast" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    [ -n "$router" ] && ip route replace default via "$router" dev "$interface"
    ;;
esac` : ''}
exit 0
`);
  chmodSync(path, 0o755);
  const events = () => readFileSync(log, 'utf8').trim().split('\n').filter(Boolean)
    .map((line) => Object.fromEntries(line.split(' ').map((kv) => kv.split('=') as [string, string])));
  return { path, events };
}
