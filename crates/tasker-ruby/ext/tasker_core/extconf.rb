# frozen_string_literal: true

# Writes the Makefile RubyGems runs to build the native part of tasker_core with cargo. There is no rb_sys
# (rubygems.org is not reachable where this gem is built, and Debian has no package of it), and RubyGems 3.3
# has no cargo builder, so this Makefile calls cargo itself.
#
# Environment:
#   TASKER_CARGO_PROFILE     the cargo profile (default "release"; "dev" builds in a fraction of the time)
#   TASKER_CARGO_TARGET_DIR  a cargo target dir to build in and keep (default: a private dir, deleted after
#                            install), so repeated installs reuse compiled dependencies
require "rbconfig"

here = __dir__
# In the packaged gem the crates are vendored next to this file; in a checkout they are two levels up.
manifest = [File.join(here, "crates", "tasker-ruby", "Cargo.toml"), File.expand_path("../../Cargo.toml", here)]
           .find { |path| File.exist?(path) } or abort "tasker_core: cannot find the tasker-ruby crate"
locked = File.exist?(File.join(here, "Cargo.lock")) ? "--locked" : ""
sitearch = RbConfig::CONFIG["sitearchdir"]

File.write("Makefile", <<~MAKE)
  CARGO ?= cargo
  PROFILE := $(if $(TASKER_CARGO_PROFILE),$(TASKER_CARGO_PROFILE),release)
  PROFILE_DIR := $(if $(filter dev test,$(PROFILE)),debug,$(PROFILE))
  TARGET_DIR := $(if $(TASKER_CARGO_TARGET_DIR),$(TASKER_CARGO_TARGET_DIR),$(CURDIR)/target)
  sitearchdir ?= #{sitearch}
  SO := tasker_core.so

  all: $(SO)

  $(SO):
  \t$(CARGO) build --profile $(PROFILE) #{locked} --lib --manifest-path #{manifest} --target-dir $(TARGET_DIR)
  \tcp $(TARGET_DIR)/$(PROFILE_DIR)/libtasker_core.so $(SO)

  install: $(SO)
  \tmkdir -p $(DESTDIR)$(sitearchdir)/tasker_core
  \tcp $(SO) $(DESTDIR)$(sitearchdir)/tasker_core/$(SO)
  \t$(if $(TASKER_CARGO_TARGET_DIR),,rm -rf $(CURDIR)/target)

  clean:
  \trm -f $(SO)

  .PHONY: all install clean
MAKE
