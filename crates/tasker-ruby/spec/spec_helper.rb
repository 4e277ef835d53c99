# frozen_string_literal: true

require "tmpdir"
require "tasker_core"
Dir[File.join(__dir__, "support", "*.rb")].sort.each { |f| require f }

module StoreHelpers
  # The stores every spec runs on: in-memory SQLite always, PostgreSQL too when TASKER_TEST_PG_URL is set
  # (each PostgreSQL spec gets its own database, so specs never see each other's tasks).
  def self.urls
    urls = { "sqlite" => -> { "sqlite::memory:" } }
    if (pg = ENV["TASKER_TEST_PG_URL"]) && !pg.empty?
      urls["postgres"] = -> { fresh_pg_database(pg) }
    end
    urls
  end

  def self.fresh_pg_database(base)
    @counter = (@counter || 0) + 1
    name = "rspec_#{Process.pid}_#{@counter}"
    admin = base.sub(%r{/[^/?]*(\?|$)}, "/postgres\\1")
    system("psql", admin, "-q", "-c", "DROP DATABASE IF EXISTS #{name}", "-c", "CREATE DATABASE #{name}",
           out: File::NULL, err: File::NULL) or raise "cannot create database #{name} via psql #{admin}"
    base.sub(%r{/[^/?]*(\?|$)}, "/#{name}\\1")
  end
end

RSpec.configure do |config|
  config.expect_with(:rspec) { |c| c.syntax = :expect }
  config.disable_monkey_patching!
  config.order = :defined
end
