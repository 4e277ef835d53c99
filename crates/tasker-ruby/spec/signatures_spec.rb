# frozen_string_literal: true

require "spec_helper"

# The object classes of sig/tasker_core.rbs are generated (`cargo xtask gen`); this keeps their readers in step
# with the classes the native extension defines from the same table.
RSpec.describe "sig/tasker_core.rbs" do
  rbs = File.read(File.expand_path("../sig/tasker_core.rbs", __dir__))
  declared = {}
  stack = []
  rbs.each_line do |line|
    if (m = line.match(/^(\s*)(class|module) (\w+)/))
      stack = stack.first(m[1].size / 2) + [m[3]]
      declared[stack.join("::")] ||= []
    elsif (m = line.match(/^\s*attr_reader (\w+):/))
      declared[stack.join("::")] << m[1].to_sym
    end
  end

  models = ObjectSpace.each_object(Class).select { |c| c < TaskerCore::Model && c.name }
  models.sort_by(&:name).each do |klass|
    it "declares every reader of #{klass.name}" do
      expect(declared.fetch(klass.name, [])).to match_array(klass.field_names)
    end
  end
end
