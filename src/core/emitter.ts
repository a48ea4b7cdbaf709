/**
 * A minimal typed event emitter for the core, which must not depend on
 * node:events (it is meant to run in browsers and workers too).
 * Listener exceptions propagate to the emitter's caller, as in Node.
 */
type Listener = (...args: never[]) => void;

export class Emitter<Events extends { [K in keyof Events]: Listener }> {
  #listeners = new Map<keyof Events, Listener[]>();

  on<K extends keyof Events>(event: K, fn: Events[K]): this {
    const list = this.#listeners.get(event);
    if (list) list.push(fn); else this.#listeners.set(event, [fn]);
    return this;
  }

  once<K extends keyof Events>(event: K, fn: Events[K]): this {
    const wrapper = ((...args: Parameters<Events[K]>) => {
      this.off(event, wrapper as Events[K]);
      (fn as (...a: Parameters<Events[K]>) => void)(...args);
    }) as Events[K];
    return this.on(event, wrapper);
  }

  off<K extends keyof Events>(event: K, fn: Events[K]): this {
    const list = this.#listeners.get(event);
    if (list) {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    }
    return this;
  }

  listenerCount<K extends keyof Events>(event: K): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): boolean {
    const list = this.#listeners.get(event);
    if (!list || list.length === 0) return false;
    for (const fn of [...list]) (fn as (...a: Parameters<Events[K]>) => void)(...args);
    return true;
  }
}
