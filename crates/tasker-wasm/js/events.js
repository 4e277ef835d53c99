// Event subscriptions, for live views: `for await (const event of engine.subscribe({ names: ['step'] })) …`,
// or `await sub.next(timeoutMs)`. A subscription sees events published after it was made, holds at most the
// engine's `eventCapacity` of them (`sub.dropped` counts losses), and its iteration ends once the engine is
// closed and its buffer is empty, or at `close()` / `break`. Events are notifications; `transitions(taskId)`
// is the durable record. One consumer per subscription: make one per view.

const TIMEOUT = Symbol('timeout')
const CLOSED = Symbol('closed')

export class Subscription {
  #native
  /** The one outstanding wait for an event; a wait that lost a race is kept for the next call, so no event is lost. */
  #pending = null
  #closed = false
  #close = null
  #closing = new Promise((resolve) => {
    this.#close = resolve
  })

  /** @internal Use `engine.subscribe`. */
  constructor(handle) {
    this.#native = handle
  }

  #recv() {
    if (this.#pending === null) {
      this.#pending = this.#native.recv()
      this.#pending.then(
        () => (this.#pending = null),
        () => (this.#pending = null),
      )
    }
    return this.#pending
  }

  /** The next event, waiting at most `timeoutMs`; `null` when none came, or when the engine is closed. */
  async next(timeoutMs = 1000) {
    let timer
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(TIMEOUT), timeoutMs)
    })
    try {
      const e = await Promise.race([this.#recv(), timeout])
      return e === TIMEOUT ? null : e
    } finally {
      clearTimeout(timer)
    }
  }

  /** The next buffered event, never waiting. */
  tryNext() {
    return this.#native.tryNext()
  }

  /** Every buffered event, never waiting. */
  drain() {
    return this.#native.drain()
  }

  /** Events lost because this subscription fell more than its buffer behind. */
  get dropped() {
    return this.#native.dropped()
  }

  /** Ends the iteration at once. */
  close() {
    this.#closed = true
    this.#close(CLOSED)
  }

  async *[Symbol.asyncIterator]() {
    try {
      while (!this.#closed) {
        const event = await Promise.race([this.#recv(), this.#closing])
        if (event === CLOSED || event === null) return
        yield event
      }
    } finally {
      this.#closed = true
    }
  }
}
