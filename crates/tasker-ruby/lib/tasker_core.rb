# frozen_string_literal: true

# Tasker Core for Ruby: workflow orchestration over a SQLite or PostgreSQL store.
#
# The engine is Rust (tasker-core, through tasker-shared-ffi); this gem is the Ruby surface. The native
# classes live under TaskerCore::Internal and are not part of the public API.
require_relative "tasker_core/version"
# The base of the object classes, which the native extension defines from its object table when it loads.
require_relative "tasker_core/models"
# The native extension: the one built for this Ruby, or a LoadError that says why there is none.
require_relative "tasker_core/native"
TaskerCore::Internal::Loader.load!
require_relative "tasker_core/errors"
require_relative "tasker_core/events"
require_relative "tasker_core/client"
require_relative "tasker_core/step_handler"
require_relative "tasker_core/worker"
require_relative "tasker_core/testing"
