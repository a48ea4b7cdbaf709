/**
 * The fuzz corpus: every failing input a soak finds, kept as a pcap file
 * (Ethernet, the frames in the order they were sent to the victim; `tcpdump
 * -r` reads it) named after its harness, with a .txt beside it saying what
 * failed and how to regenerate it. test/fuzz-structured.test.ts replays
 * every file as a regression case.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LINKTYPE, pcapGlobalHeader, pcapRecord, readPcap } from '../../src/wire/pcap.js';
import type { HarnessName } from './harness.js';
import type { Failure } from './run.js';

export interface CorpusEntry {
  file: string;
  harness: HarnessName;
  frames: Uint8Array[];
}

export function writeCorpusEntry(dir: string, seed: number, f: Failure): string {
  mkdirSync(dir, { recursive: true });
  const [harness, protocol] = f.campaign.split(':');
  const base = `${harness}-${protocol}-seed${seed}-at${f.firstIndex}`;
  const parts = [pcapGlobalHeader(LINKTYPE.ethernet)];
  // Timestamps 1 ms apart from 0: the order is what matters.
  f.frames.forEach((frame, i) => parts.push(pcapRecord(frame, i)));
  writeFileSync(join(dir, `${base}.pcap`), Buffer.concat(parts));
  writeFileSync(join(dir, `${base}.txt`), [
    `campaign: ${f.campaign}`,
    `failure: ${f.message}`,
    `frames: ${f.frames.length}, from index ${f.firstIndex} of the campaign`,
    `regenerate: npm run fuzz -- --seed ${seed} --harness ${harness} --protocols ${protocol}`,
    '',
  ].join('\n'));
  return join(dir, `${base}.pcap`);
}

export function readCorpus(dir: string): CorpusEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith('.pcap')).sort().map((n) => {
    const harness = n.startsWith('gateway-') ? 'gateway' : 'stack';
    const pcap = readPcap(new Uint8Array(readFileSync(join(dir, n))));
    if (pcap.linktype !== LINKTYPE.ethernet) throw new RangeError(`${n}: not an Ethernet capture (link type ${pcap.linktype})`);
    return { file: n, harness, frames: pcap.records.map((r) => r.packet.slice()) };
  });
}
