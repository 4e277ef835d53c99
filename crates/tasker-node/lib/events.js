'use strict'
// Event subscriptions: `for await (const event of client.subscribe({ names: ['step'] })) { … }`, or
// `await sub.next(timeoutMs)`. A subscription sees events published after it was made, holds at most the
// client's `eventCapacity` of them (`sub.dropped` counts losses), and its iteration ends once the client is
// closed and its buffer is empty (or `close()` / `break`). Events are notifications;
// `client.transitions(taskId)` is the durable record.

/** How long one wait of the iterator lasts before it looks again at whether it was closed. */
const SLICE_MS = 200

class Subscription {
  #native
  #client
  #closed = false

  constructor(native, client) {
    this.#native = native
    this.#client = client
  }

  /** The next event, waiting at most `timeoutMs`; `null` when none came, or when the client is closed. */
  next(timeoutMs = 1000) {
    return this.#native.next(timeoutMs)
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

  /** Ends the iteration (at its next wake-up, at most 200 ms later). */
  close() {
    this.#closed = true
  }

  async *[Symbol.asyncIterator]() {
    try {
      while (!this.#closed) {
        const event = await this.#native.next(SLICE_MS)
        if (event !== null) yield event
        else if (this.#client.closed) return
      }
    } finally {
      this.#closed = true
    }
  }
}

module.exports = { Subscription }
