# frozen_string_literal: true

module TaskerCore
  # The base of every object the engine hands out (Task, Step, StepContext, Performance::SlowStep, …).
  #
  # The classes and their fields are not written here: the native extension defines one subclass per object
  # of tasker-shared-ffi's object table when it loads, and calls Model.define_fields on it. Readers only;
  # JSON payloads are Hashes with String keys, timestamps are Time (UTC), ids are Strings.
  class Model
    class << self
      # The object's name in the table ("Task", "SlowStep").
      attr_reader :object_name

      # Called by the native extension: the table's name of this class and its fields, in table order.
      def define_fields(object_name, names)
        @object_name = object_name
        @field_names = names.map(&:to_sym).freeze
        attr_reader(*@field_names)
      end

      def field_names
        @field_names || []
      end

      # Builds an object from a Hash (String or Symbol keys) of every field, nested objects as Hashes too,
      # checked against the table: a missing or unknown field, or a value of the wrong kind, raises
      # ValidationError naming the field path (`token.attempt: expected an integer, found a string`).
      def from_h(hash)
        return nil if hash.nil?

        Internal.object(object_name, hash)
      end

      def from_a(list)
        list.map { |h| from_h(h) }
      end
    end

    # Every field as plain data, Symbol keys; nested objects become Hashes too.
    def to_h
      self.class.field_names.to_h { |f| [f, plain(public_send(f))] }
    end

    def ==(other)
      other.class == self.class && other.to_h == to_h
    end
    alias eql? ==

    def hash
      to_h.hash
    end

    def inspect
      attrs = self.class.field_names.map { |f| "#{f}=#{public_send(f).inspect}" }
      "#<#{self.class.name} #{attrs.join(' ')}>"
    end

    private

    def plain(value)
      case value
      when Model then value.to_h
      when Array then value.map { |v| plain(v) }
      else value
      end
    end
  end

  # Why each step of a task is or is not ready (its fields come from the table too).
  class Explain < Model
    def step(name)
      steps.find { |s| s.name == name }
    end
  end
end
