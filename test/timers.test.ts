/**
 * The stack's one timer, driven by a manual clock: an idle stack asks to be
 * woken only when a timer has work (not every 100 ms for lwIP's IGMP and
 * MLD ticks), and a pending MLD report still goes out on time.
 */
import { describe, expect, it } from 'vitest';
import { createStack, ManualClock, type Link } from '../src/index.js';
import type { FrameReceiver } from '../src/core/link.js';

/** A link that records what the stack sends and delivers nothing. */
function recordingLink(sent: Uint8Array[]): Link {
  return {
    medium: 'ethernet',
    mtu: 1500,
    attach(_receive: FrameReceiver) {},
    send: (frame) => void sent.push(frame.slice()),
    close() {},
  };
}

/** ICMPv6 types of the IPv6 frames in `frames` (no extension headers but hop-by-hop). */
function icmp6Types(frames: Uint8Array[]): number[] {
  const types: number[] = [];
  for (const f of frames) {
    if (f[12] !== 0x86 || f[13] !== 0xdd) continue;
    let next = f[14 + 6]!;
    let at = 14 + 40;
    if (next === 0) { // hop-by-hop options (MLD reports carry router alert)
      next = f[at]!;
      at += (f[at + 1]! + 1) * 8;
    }
    if (next === 58) types.push(f[at]!);
  }
  return types;
}

describe('the stack timer', () => {
  it('wakes an idle stack a few times a second, not every 100 ms, and still sends its MLD reports', async () => {
    const clock = new ManualClock(1_000_000);
    let fired = 0;
    const setTimer = clock.setTimer.bind(clock);
    clock.setTimer = (fn, ms) => setTimer(() => {
      fired++;
      fn();
    }, ms);
    const sent: Uint8Array[] = [];
    const stack = createStack({ clock });
    try {
      stack.addInterface({ link: recordingLink(sent), ipv4: '10.9.0.1/24', ipv6: 'fd09::1/64' });
      // Joining the solicited-node groups schedules MLD reports (RFC 2710
      // section 4: after a random delay): they must still be sent.
      await clock.advance(3_000);
      expect(icmp6Types(sent)).toContain(131); // MLDv1 report
      fired = 0;
      await clock.advance(10_000);
      // lwIP's other timers tick once a second (ARP, ND, reassembly, DNS)
      // or twice (DHCP's fine timer): a few wake-ups a second, where the
      // 100 ms IGMP and MLD ticks made it 12.
      expect(fired).toBeLessThanOrEqual(40);
      expect(fired).toBeGreaterThan(0);
    } finally {
      stack.close();
    }
  });
});
