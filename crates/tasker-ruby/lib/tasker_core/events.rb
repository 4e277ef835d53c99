# frozen_string_literal: true

module TaskerCore
  # Lifecycle events. A subscription sees events published after it was made; its buffer is bounded
  # (ClientOptions event_capacity) and #dropped counts what a slow reader lost. Events::Event is the table's
  # object class, defined by the native extension.
  module Events
    class Subscription
      include Enumerable

      def initialize(native)
        @native = native
      end

      # The next event, waiting at most `timeout` seconds (the GVL is released meanwhile); nil if none came.
      def next(timeout: 1.0)
        @native.next(Float(timeout))
      end

      # The next buffered event, or nil, without waiting.
      def try_next
        @native.try_next
      end

      # Every buffered event, without waiting.
      def drain
        @native.drain
      end

      # Events lost because the buffer was full.
      def dropped
        @native.dropped
      end

      # Yields events as they come; returns when none came within `timeout` seconds.
      def each(timeout: 1.0)
        return enum_for(:each, timeout: timeout) unless block_given?

        while (event = self.next(timeout: timeout))
          yield event
        end
        self
      end
    end

    # Subscribes to `client`'s events; `names` match exactly or by prefix before a dot ("step" is every
    # step.* event).
    def self.subscribe(client, task_id: nil, names: [])
      client.subscribe(task_id: task_id, names: names)
    end
  end
end
