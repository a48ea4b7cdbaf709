/**
 * How much the gateway's host-socket side feeds its stack per event-loop
 * turn. Each host socket alone is held back by its stack socket (pipe
 * backpressure on lwIP's 1 MiB send buffer), but not the flows together:
 * with many host sockets readable in one poll phase, every one of them
 * copied up to a send buffer's worth into the stack in the same turn (up to
 * the stack's memory budget, 64 MiB by default), so the turn ran for as long
 * as the busiest flows wanted. Stacks already feed lwIP a bounded number of
 * frames per turn (src/core/stack.ts); this is the same rule for the host
 * side: once a turn has passed `bytesPerTurn` from host sockets, each socket
 * that delivers more still has its chunk written (nothing is held back or
 * lost) but is then paused until a later turn, when the paused sockets
 * resume in the order they were paused. An idle or lightly loaded gateway
 * never reaches the budget, so nothing waits.
 */
import type { Readable, Writable } from 'node:stream';

const defer: (fn: () => void) => void =
  typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

/** Bytes per turn from all host sockets of one gateway: what one flow at MTU 65520 moved in its busiest turns (6 Gbit/s), under a millisecond of copying and segmenting here; 16 flows at MTU 1500 reached 1.6 MiB. */
export const HOST_BYTES_PER_TURN = 1024 * 1024;

/** What the budget resumes on a later turn. */
export interface BudgetedSource {
  /** The budget no longer holds this source back (it may still wait for something else). */
  budgetResume(): void;
}

export class TurnBudget {
  readonly bytesPerTurn: number;
  #left: number;
  #resetScheduled = false;
  #deferred: BudgetedSource[] = [];
  /** Turns in which the budget ran out (some source waited for a later turn). */
  exhaustedTurns = 0;

  constructor(bytesPerTurn = HOST_BYTES_PER_TURN) {
    this.bytesPerTurn = bytesPerTurn;
    this.#left = bytesPerTurn;
  }

  /**
   * Counts `bytes` a source has just passed on. Returns true when this
   * turn's budget is spent: the source should pause, and its budgetResume()
   * is called on a later turn (once per true returned).
   */
  take(bytes: number, source: BudgetedSource): boolean {
    this.#spend(bytes);
    if (this.#left > 0) return false;
    this.#deferred.push(source);
    if (this.#deferred.length === 1) this.exhaustedTurns++;
    return true;
  }

  /**
   * As src.pipe(dst) (dst ends when src ends; errors are the caller's), with
   * the bytes counted against this budget.
   */
  pipe(src: Readable, dst: Writable): void {
    let full = false; // paused because dst's buffer is full ('drain' resumes)
    let deferred = false; // paused because this turn's budget is spent
    const source: BudgetedSource = {
      budgetResume() {
        deferred = false;
        if (!full && !src.destroyed) src.resume();
      },
    };
    const onData = (chunk: Buffer): void => {
      if (dst.destroyed || dst.writableEnded) return;
      if (!dst.write(chunk)) {
        full = true;
        src.pause();
      }
      if (!deferred && this.take(chunk.length, source)) {
        deferred = true;
        src.pause();
      }
    };
    const onDrain = (): void => {
      full = false;
      if (!deferred) src.resume();
    };
    const onEnd = (): void => {
      if (!dst.destroyed && !dst.writableEnded) dst.end();
    };
    const unpipe = (): void => {
      src.off('data', onData);
      src.off('end', onEnd);
      dst.off('drain', onDrain);
    };
    src.on('data', onData);
    src.once('end', onEnd);
    dst.on('drain', onDrain);
    dst.once('close', unpipe);
    src.once('close', () => dst.off('drain', onDrain));
  }

  #spend(bytes: number): void {
    this.#left -= bytes;
    // One reset per turn that used the budget at all; none while idle.
    if (!this.#resetScheduled) {
      this.#resetScheduled = true;
      defer(() => this.#reset());
    }
  }

  #reset(): void {
    this.#resetScheduled = false;
    this.#left = this.bytesPerTurn;
    const waiting = this.#deferred;
    this.#deferred = [];
    for (const source of waiting) source.budgetResume();
  }
}
