package io.tasker.core;

import java.io.IOException;
import java.io.InputStream;
import java.lang.ref.Cleaner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Locale;

/**
 * The native methods of the jni adapter (crates/tasker-jvm/src/*.rs), bound by its {@code JNI_OnLoad}, and
 * the loading of the library. Every argument that is not a {@code long} is passed as {@code Object} and every
 * result is an {@code Object}: the Rust side checks and converts them (a null required argument is a
 * {@code NullPointerException} naming it, a value of a wrong type a {@link ValidationException}).
 *
 * <p>The library is the file named by the system property {@code tasker.native.library} or the environment
 * variable {@code TASKER_JVM_NATIVE} when set (development), otherwise the jar's
 * {@code natives/<platform>/libtasker_jvm.so}, copied to a private temporary file and loaded from there.
 */
final class Native {
    private Native() {}

    static final Cleaner CLEANER = Cleaner.create();

    static {
        load();
    }

    /** The jar's folder name for this machine, or null when the jar carries no library for it. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (os.startsWith("linux") && (arch.equals("amd64") || arch.equals("x86_64"))) return "linux-x86_64";
        return null;
    }

    private static void load() {
        String explicit = System.getProperty("tasker.native.library");
        if (explicit == null || explicit.isEmpty()) explicit = System.getenv("TASKER_JVM_NATIVE");
        if (explicit != null && !explicit.isEmpty()) {
            System.load(Path.of(explicit).toAbsolutePath().toString());
            return;
        }
        String platform = platform();
        if (platform == null) {
            throw new UnsupportedOperationException("io.tasker:tasker-core has no native library for "
                    + System.getProperty("os.name") + "/" + System.getProperty("os.arch")
                    + "; this jar supports linux-x86_64 (or set -Dtasker.native.library=/path/to/libtasker_jvm.so)");
        }
        String resource = "/natives/" + platform + "/libtasker_jvm.so";
        try (InputStream in = Native.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new UnsupportedOperationException("the tasker-core jar lacks " + resource
                        + "; build it with `cargo xtask package jvm`");
            }
            Path file = Files.createTempFile("tasker_jvm", ".so",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            file.toFile().deleteOnExit();
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            System.load(file.toString());
        } catch (IOException e) {
            throw new UncheckedIOException("could not extract the tasker native library", e);
        }
    }

    /** Frees {@code handle} once {@code owner} is unreachable. */
    static void track(Object owner, long handle) {
        CLEANER.register(owner, () -> free(handle));
    }

    static final class UncheckedIOException extends RuntimeException {
        UncheckedIOException(String message, IOException cause) {
            super(message, cause);
        }
    }

    // errors.rs
    static native Object errorKinds();
    static native void raise(Object code);
    static native void panic();

    // client.rs
    static native long open(Object url, Object options);
    static native void free(long h);
    static native Object close(long h);
    static native boolean isClosed(long h);
    static native Object validateOrRefresh(long h);
    static native Object refresh(long h);
    static native Object health(long h);
    static native Object now(long h);
    static native Object advanceClockMs(long h, long ms);
    static native long subscribe(long h, Object filter);
    static native long workerSession(long h, Object options);
    static native Object registerTemplate(long h, Object source);
    static native Object template(long h, Object namespace, Object name, Object version);
    static native Object templates(long h);
    static native Object createTask(long h, Object namespace, Object name, Object options);
    static native Object task(long h, Object taskId);
    static native Object tasks(long h, Object filter);
    static native Object steps(long h, Object taskId);
    static native Object step(long h, Object stepId);
    static native Object explain(long h, Object taskId);
    static native Object transitions(long h, Object taskId);
    static native Object cancelTask(long h, Object taskId, Object reason);
    static native Object retryTask(long h, Object taskId);

    static native Object runTaskNow(long h, Object taskId);
    static native Object resolveStep(long h, Object stepId, Object result);
    static native Object resolveTask(long h, Object taskId, Object reason);
    static native Object reapExpiredLeases(long h, long limit);
    static native Object registerSchedule(long h, Object name, Object namespace, Object template, Object cron,
            Object options);
    static native Object pauseSchedule(long h, Object name);
    static native Object resumeSchedule(long h, Object name);
    static native Object removeSchedule(long h, Object name);
    static native Object schedule(long h, Object name);
    static native Object schedules(long h);
    static native Object fireSchedules(long h);

    // worker.rs
    static native Object workerId(long h);
    static native boolean isShutdown(long h);
    static native Object nextBatch(long h, long max, long waitMs);
    static native Object claim(long h, long max, long waitMs);
    static native void report(long h, Object stepId, long attempt, Object result);
    static native void reportFailure(long h, Object stepId, long attempt, Object failure);
    static native void reportMissing(long h, Object stepId, long attempt, Object handlerKey);
    static native void forget(long h, Object stepId, long attempt);
    static native void flush(long h);
    static native Object complete(long h, Object stepId, long attempt, Object result);
    static native Object fail(long h, Object stepId, long attempt, Object failure);
    static native Object finishMany(long h, Object outcomes);
    static native void shutdown(long h);
    static native Object outstanding(long h);
    static native Object stats(long h);
    static native Object nextRetryAt(long h);
    static native long untilIdle(long h, Object options);
    static native Object runNextBatch(long h);
    static native Object runFinish(long h);

    // events.rs
    static native Object subNext(long h, long timeoutMs);
    static native Object subTryNext(long h);
    static native Object subDrain(long h);
    static native long subDropped(long h);

    // analytics.rs
    static native Object executionContext(long h, Object taskId);
    static native Object dependencyLevels(long h, Object taskId);
    static native Object healthCounts(long h);
    static native Object analyticsMetrics(long h, long sinceMs);
    static native Object slowestSteps(long h, Object filter, long limit);
    static native Object slowestTasks(long h, Object filter, long limit);

    // testing.rs
    static native Object patternTemplate(Object spec);
    static native Object registerPattern(long h, Object spec);
    static native Object createPatternTasks(long h, Object spec, long count, Object context);
    static native Object runScripted(long h, Object script, Object options);
    static native Object scriptOutcome(Object script, Object stepName, Object handlerKey, long attempt);
    static native Object scenarioFiles(Object dir);
    static native Object loadScenario(Object path);
    static native boolean jsonContains(Object actual, Object expected);
}
