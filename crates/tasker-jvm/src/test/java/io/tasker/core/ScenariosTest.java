package io.tasker.core;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Replays every tests/scenarios/*.yaml through the Java client and worker (docs/bindings.md §9), on memory,
 * SQLite (memory and file) and PostgreSQL (TASKER_TEST_PG_URL; reported as skipped without it).
 */
class ScenariosTest {
    static final Path DIR = Stores.repoRoot().resolve("tests/scenarios");

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (Path file : TestHelpers.scenarioFiles(DIR)) {
            Stores.all().forEach(store -> out.add(Arguments.of(
                    file.getFileName().toString().replace(".yaml", ""), store.get()[0], store.get()[1], file)));
        }
        return out.stream();
    }

    @Test
    void theScenarioDirectoryIsNotEmpty() {
        assertTrue(TestHelpers.scenarioFiles(DIR).size() >= 10, "expected the scenario files in " + DIR);
    }

    @ParameterizedTest(name = "{0} on {1}")
    @MethodSource("cases")
    @SuppressWarnings("unchecked")
    void everyScenario(String name, String store, Supplier<String> fresh, Path file) {
        ScenarioRunner.run(TestHelpers.loadScenario(file), fresh.get());
    }

    @Test
    @SuppressWarnings("unchecked")
    void theRunnerReportsEveryDifference() {
        // The replay is only worth something if a wrong expectation fails it, with the place named.
        Map<String, Object> scenario = TestHelpers.loadScenario(DIR.resolve("linear_success.yaml"));
        Map<String, Object> tasks = (Map<String, Object>) ((Map<String, Object>) scenario.get("expect")).get("tasks");
        Map<String, Object> task = (Map<String, Object>) tasks.values().iterator().next();
        task.put("state", "error");
        boolean events = task.containsKey("events");
        if (events) {
            List<Object> lines = (List<Object>) task.get("events");
            task.put("events", lines.subList(0, lines.size() - 1));
        }
        ScenarioRunner.ScenarioFailed e = assertThrows(ScenarioRunner.ScenarioFailed.class,
                () -> ScenarioRunner.run(scenario, "memory:"));
        assertTrue(e.getMessage().contains(".state: expected error, found complete"), e.getMessage());
        if (events) assertTrue(e.getMessage().contains("sequences differ"), e.getMessage());
        assertTrue(e.getMessage().contains("observed:"), e.getMessage());
    }
}
