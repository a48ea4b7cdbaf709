/**
 * `npm run fuzz [-- --seed N --count N --harness stack|gateway|all --protocols a,b --corpus DIR --health-every N]`:
 * the soak. `count` frames (10^7 by default) shared evenly by the
 * campaigns; each failure is written to the corpus and the campaign goes
 * on with a fresh harness. Prints one line per campaign and a verdict;
 * exits 1 when anything failed, 2 for bad usage.
 */
import { PROTOCOLS, type Protocol } from './dissect.js';
import { openHarness, type Harness, type HarnessName } from './harness.js';
import { CAMPAIGNS, runCampaign, type CampaignResult } from './run.js';
import { writeCorpusEntry } from './corpus.js';

interface Args {
  seed: number;
  count: number;
  harnesses: HarnessName[];
  protocols: Protocol[] | null;
  corpus: string;
  healthEvery: number;
}

function usage(message: string): never {
  process.stderr.write(`tcpip-ts fuzz: ${message}; usage: npm run fuzz -- [--seed N] [--count N] [--harness stack|gateway|all] [--protocols ${PROTOCOLS.join(',')}] [--corpus DIR] [--health-every N]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    seed: (Date.now() ^ (process.pid << 16)) >>> 0,
    count: 10_000_000,
    harnesses: ['stack', 'gateway'],
    protocols: null,
    corpus: 'test/fuzz-corpus',
    healthEvery: 20_000,
  };
  const int = (flag: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min || n > 2 ** 32) usage(`${flag} takes an integer of at least ${min}, not ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const v = argv[i + 1];
    if (flag === '--seed') args.seed = int(flag, v, 0) >>> 0;
    else if (flag === '--count') args.count = int(flag, v, 1);
    else if (flag === '--health-every') args.healthEvery = int(flag, v, 1);
    else if (flag === '--corpus') {
      if (!v) usage('--corpus takes a directory');
      args.corpus = v;
    } else if (flag === '--harness') {
      if (v !== 'stack' && v !== 'gateway' && v !== 'all') usage(`--harness takes stack, gateway or all, not ${JSON.stringify(v)}`);
      args.harnesses = v === 'all' ? ['stack', 'gateway'] : [v];
    } else if (flag === '--protocols') {
      const list = (v ?? '').split(',').filter(Boolean);
      const bad = list.find((p) => !(PROTOCOLS as readonly string[]).includes(p));
      if (list.length === 0 || bad) usage(`--protocols takes a comma-separated list of ${PROTOCOLS.join(', ')}${bad ? `, not ${JSON.stringify(bad)}` : ''}`);
      args.protocols = list as Protocol[];
    } else if (flag === '--help' || flag === '-h') {
      process.stdout.write('npm run fuzz -- [--seed N] [--count N] [--harness stack|gateway|all] [--protocols LIST] [--corpus DIR] [--health-every N]\n');
      process.exit(0);
    } else usage(`unknown argument ${JSON.stringify(flag)}`);
    i++;
  }
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const campaigns: [HarnessName, Protocol][] = [];
  for (const h of args.harnesses) for (const p of CAMPAIGNS[h]) if (!args.protocols || args.protocols.includes(p)) campaigns.push([h, p]);
  if (campaigns.length === 0) usage('no campaign matches --harness and --protocols');
  const per = Math.ceil(args.count / campaigns.length);
  console.log(`fuzz: seed ${args.seed}, ${(per * campaigns.length).toLocaleString('en')} frames over ${campaigns.length} campaigns (${per.toLocaleString('en')} each), corpus ${args.corpus}`);

  // A JS exception thrown while a stack dispatches a mutant's events is that
  // campaign's failure: handed to the harness, which the runner checks after every batch.
  const state: { harness: Harness | null; recent: Uint8Array[] } = { harness: null, recent: [] };
  const crashed = (err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    if (state.harness) state.harness.errors.push(new Error(`uncaught: ${e.stack ?? e.message}`));
    else throw e;
  };
  process.on('uncaughtException', crashed);
  process.on('unhandledRejection', crashed);

  const t0 = performance.now();
  const results: CampaignResult[] = [];
  const written: string[] = [];
  for (const [name, protocol] of campaigns) {
    let h = await openHarness(name);
    state.harness = h;
    const r = await runCampaign(h, protocol, {
      seed: args.seed,
      count: per,
      healthEvery: args.healthEvery,
      state: state as { harness: Harness; recent: Uint8Array[] },
      onFailure: async (f) => {
        written.push(writeCorpusEntry(args.corpus, args.seed, f));
        console.log(`  FAIL ${f.campaign} near frame ${f.firstIndex}: ${f.message}`);
        h.close();
        h = await openHarness(name);
        return h;
      },
    });
    h.close();
    state.harness = null;
    results.push(r);
    const probe = r.probe ? `, probe ${r.probe.counted}/${r.probe.sent} ${r.probe.counter}` : '';
    if (r.probe && r.probe.counted !== r.probe.sent) {
      r.failures.push({ campaign: r.campaign, message: `probe: ${r.probe.counted} of ${r.probe.sent} frames with a bad ${r.probe.counter} counted`, frames: [], firstIndex: -1 });
    }
    console.log(`${r.campaign.padEnd(18)} ${r.skipped ? `skipped: ${r.skipped}` : `${r.frames.toLocaleString('en')} frames, ${r.drops.toLocaleString('en')} drops, ${r.seconds.toFixed(1)} s${probe}, ${r.failures.length} failures`}`);
  }
  const frames = results.reduce((n, r) => n + r.frames, 0);
  const drops = results.reduce((n, r) => n + r.drops, 0);
  const failures = results.reduce((n, r) => n + r.failures.length, 0);
  const seconds = (performance.now() - t0) / 1000;
  console.log(`fuzz ${failures === 0 ? 'PASS' : 'FAIL'}: seed ${args.seed}, ${frames.toLocaleString('en')} frames, ${drops.toLocaleString('en')} drops, ${seconds.toFixed(1)} s, ${failures} failures${written.length ? `; corpus: ${written.join(', ')}` : ''}`);
  return failures === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`tcpip-ts fuzz: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
