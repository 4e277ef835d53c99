package io.tasker.core;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/** How a run until idle goes: batch size (16), a claim budget, a timeout (30 s), and whether a manual clock is advanced. */
public final class RunOptions {
    final Map<String, Object> map = new LinkedHashMap<>();

    public static RunOptions defaults() {
        return new RunOptions();
    }

    public RunOptions batchSize(int n) {
        map.put("batch_size", (long) n);
        return this;
    }

    public RunOptions maxClaims(Long n) {
        map.put("max_claims", n);
        return this;
    }

    public RunOptions timeout(Duration timeout) {
        map.put("timeout_ms", timeout.toMillis());
        return this;
    }

    /** With a manual clock, move it to the next scheduled retry when nothing is ready (default true). */
    public RunOptions autoAdvanceClock(boolean on) {
        map.put("auto_advance_clock", on);
        return this;
    }
}
