# frozen_string_literal: true

# Tasker Core for Ruby: workflow orchestration over a SQLite or PostgreSQL store.
#
# The engine is Rust (tasker-core, through tasker-shared-ffi); this gem is the Ruby surface. The native
# classes live under TaskerCore::Internal and are not part of the public API.
require_relative "tasker_core/version"
# The base of the object classes, which the native extension defines from its object table when it loads.
require_relative "tasker_core/models"
begin
  # A checkout (`rspec -Ilib`) and RubyGems' copy of the extension into lib/ both put it here…
  require_relative "tasker_core/tasker_core"
rescue LoadError
  # …and an installed gem's extension dir is on the load path.
  require "tasker_core/tasker_core"
end
require_relative "tasker_core/errors"
require_relative "tasker_core/events"
require_relative "tasker_core/client"
require_relative "tasker_core/step_handler"
require_relative "tasker_core/worker"
require_relative "tasker_core/testing"
