# frozen_string_literal: true

module TaskerCore
  module Internal
    # Finds and loads the native extension, and refuses one that does not belong to this Ruby or to this
    # gem with a LoadError that says what to do, rather than loading it and failing later on a mismatched
    # ABI or API.
    #
    # Where the extension is:
    # - the platform gem (tasker_core-<version>-x86_64-linux.gem) ships one per Ruby ABI, at
    #   lib/tasker_core/<major.minor>/tasker_core.so;
    # - the source gem builds one at install, which RubyGems puts at lib/tasker_core/tasker_core.so and in
    #   the gem's extension dir (on the load path);
    # - a checkout has the one `cargo xtask test-all --only ruby` copies to lib/tasker_core/tasker_core.so.
    #
    # The extension itself refuses, before it defines anything, to initialise in a Ruby of another
    # major.minor than the headers it was compiled against (src/lib.rs), which covers a stale build in the
    # flat layout too.
    module Loader
      RUBY_ABI = RUBY_VERSION[/\A\d+\.\d+/]

      # The Ruby ABIs a platform gem ships, from its directory names; empty for a source gem or a checkout.
      def self.prebuilt_abis(dir = __dir__)
        Dir.glob(File.join(dir, "*", "tasker_core.so"))
           .map { |so| File.basename(File.dirname(so)) }
           .grep(/\A\d+\.\d+\z/)
           .sort_by { |abi| abi.split(".").map(&:to_i) }
      end

      # The file (or feature name) to require for this Ruby.
      def self.locate(dir = __dir__, ruby_abi: RUBY_ABI)
        abis = prebuilt_abis(dir)
        if abis.empty?
          flat = File.join(dir, "tasker_core.so")
          return File.exist?(flat) ? flat : "tasker_core/tasker_core"
        end
        return File.join(dir, ruby_abi, "tasker_core.so") if abis.include?(ruby_abi)

        raise LoadError,
              "tasker_core #{VERSION}: this gem's native extension is built for Ruby #{abis.join(', ')} only, " \
              "but this is Ruby #{ruby_abi} (#{RUBY_VERSION}); install the source gem " \
              "tasker_core-#{VERSION}.gem instead, which compiles the extension for this Ruby (it needs cargo)"
      end

      # Refuses an extension left over from another version of the gem, or from a build older than the
      # version check (`native_version` nil): its classes would not match lib/.
      def self.check!(native_version:, path:)
        return if native_version == VERSION

        found = native_version ? "is version #{native_version}" : "does not say its version (an older build)"
        raise LoadError,
              "tasker_core: the native extension #{path} #{found}, but the Ruby code is version #{VERSION}; " \
              "it is left over from another build: reinstall the gem, or in a checkout run " \
              "`cargo xtask test-all --only ruby` (or copy the freshly built libtasker_core.so over it)"
      end

      def self.load!
        path = locate
        require path
        native_version = Internal.const_defined?(:NATIVE_VERSION, false) ? Internal::NATIVE_VERSION : nil
        check!(native_version: native_version, path: $LOADED_FEATURES.grep(/tasker_core\.so\z/).last || path)
      end
    end
  end
end
