# frozen_string_literal: true

require "spec_helper"
require "fileutils"
require "open3"
require "rbconfig"

# The loader of lib/tasker_core/native.rb: it finds this Ruby's extension in a platform gem's per-ABI
# layout, in the flat layout of a source gem or checkout, and refuses an extension of another Ruby or of
# another version of the gem with a LoadError that says what to do.
RSpec.describe TaskerCore::Internal::Loader do
  let(:abi) { RUBY_VERSION[/\A\d+\.\d+/] }
  let(:lib) { File.expand_path("../lib", __dir__) }
  let(:built) { File.join(lib, "tasker_core", "tasker_core.so") }

  around do |example|
    Dir.mktmpdir("tasker-loader") do |dir|
      @dir = dir
      example.run
    end
  end

  def touch(*parts)
    path = File.join(@dir, *parts)
    FileUtils.mkdir_p(File.dirname(path))
    File.write(path, "")
    path
  end

  # A copy of lib/ with the real extension at `layout` (relative to lib/tasker_core), loaded by a fresh ruby.
  def require_from_copy(layout)
    copy = File.join(@dir, "lib")
    FileUtils.cp_r(lib, copy)
    FileUtils.rm_f(File.join(copy, "tasker_core", "tasker_core.so"))
    target = File.join(copy, "tasker_core", layout)
    FileUtils.mkdir_p(File.dirname(target))
    FileUtils.cp(built, target)
    script = 'require "tasker_core"; puts $LOADED_FEATURES.grep(/tasker_core\.so\z/)'
    Open3.capture3({ "RUBYLIB" => nil, "RUBYOPT" => nil }, RbConfig.ruby, "-I", copy, "-e", script)
  end

  it "lists the ABIs of a platform gem's layout, oldest first, ignoring other directories" do
    touch("3.10", "tasker_core.so")
    touch("3.2", "tasker_core.so")
    touch("support", "tasker_core.so")
    touch("3.3", "other.so")
    expect(described_class.prebuilt_abis(@dir)).to eq(%w[3.2 3.10])
  end

  it "picks this Ruby's library in a platform gem" do
    touch("3.0", "tasker_core.so")
    so = touch(abi, "tasker_core.so")
    expect(described_class.locate(@dir, ruby_abi: abi)).to eq(so)
  end

  it "takes the flat library of a source gem or checkout, else the one on the load path" do
    expect(described_class.locate(@dir)).to eq("tasker_core/tasker_core")
    so = touch("tasker_core.so")
    expect(described_class.locate(@dir)).to eq(so)
  end

  it "refuses a platform gem built for other Rubies, naming them, this Ruby and the gem to install instead" do
    touch("2.7", "tasker_core.so")
    touch("3.0", "tasker_core.so")
    expect { described_class.locate(@dir, ruby_abi: "3.9") }.to raise_error(LoadError) { |e|
      expect(e.message).to include("built for Ruby 2.7, 3.0 only", "this is Ruby 3.9",
                                   "tasker_core-#{TaskerCore::VERSION}.gem")
    }
  end

  it "refuses an extension of another version of the gem, naming both versions and the file" do
    expect { described_class.check!(native_version: "0.0.1", path: "/x/tasker_core.so") }
      .to raise_error(LoadError, %r{/x/tasker_core\.so is version 0\.0\.1, but the Ruby code is version #{Regexp.escape(TaskerCore::VERSION)}})
    expect { described_class.check!(native_version: nil, path: "/x/tasker_core.so") }
      .to raise_error(LoadError, %r{/x/tasker_core\.so does not say its version \(an older build\), but the Ruby code})
    expect(described_class.check!(native_version: TaskerCore::VERSION, path: "/x")).to be_nil
  end

  it "loaded an extension that says it is of this gem's version and this Ruby's ABI" do
    expect(TaskerCore::Internal::NATIVE_VERSION).to eq(TaskerCore::VERSION)
    expect(TaskerCore::Internal::NATIVE_RUBY_ABI).to eq(abi)
  end

  it "loads the real extension from a platform gem's layout in a fresh process" do
    out, err, status = require_from_copy(File.join(abi, "tasker_core.so"))
    expect([status.success?, err]).to eq([true, ""])
    expect(out.strip).to end_with("/lib/tasker_core/#{abi}/tasker_core.so")
  end

  it "fails to load, before the library is opened, when the platform gem has only another Ruby's library" do
    out, err, status = require_from_copy(File.join("2.7", "tasker_core.so"))
    expect(status.success?).to be(false)
    expect(out).to eq("")
    expect(err).to include("LoadError", "built for Ruby 2.7 only, but this is Ruby #{abi} (#{RUBY_VERSION})")
  end
end
