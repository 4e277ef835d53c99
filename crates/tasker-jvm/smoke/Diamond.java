package example;

import io.tasker.core.CreateTask;
import io.tasker.core.RunReport;
import io.tasker.core.Step;
import io.tasker.core.Task;
import io.tasker.core.TaskerClient;
import io.tasker.core.Worker;
import java.util.List;
import java.util.Map;

/** The first workflow of docs/guides/java.md, run against the installed artifact (library from the jar). */
public final class Diamond {
    public static void main(String[] args) {
        String yaml = String.join("\n",
                "namespace: shop",
                "name: order",
                "version: 1.0.0",
                "steps:",
                "  - name: validate",
                "    handler: shop.validate",
                "  - name: charge",
                "    handler: shop.charge",
                "    depends_on: [validate]",
                "  - name: reserve",
                "    handler: shop.reserve",
                "    depends_on: [validate]",
                "  - name: ship",
                "    handler: shop.ship",
                "    depends_on: [charge, reserve]",
                "");
        try (TaskerClient client = TaskerClient.connect("memory:")) {
            client.registerTemplate(yaml);
            Task task = client.createTask("shop", "order", CreateTask.withContext(Map.of("order_id", 42L)));
            Worker worker = new Worker(client);
            for (String key : List.of("shop.validate", "shop.charge", "shop.reserve", "shop.ship")) {
                worker.handle(key, ctx -> Map.of("step", ctx.stepName(), "saw", ctx.dependencyResults().keySet().size()));
            }
            RunReport report = worker.runUntilIdle();
            Task done = client.task(task.id());
            if (!done.state().equals("complete") || report.completed() != 4) {
                throw new IllegalStateException("the diamond did not complete: " + done + " " + report);
            }
            Step ship = client.steps(task.id()).get(3);
            if (!ship.result().equals(Map.of("step", "ship", "saw", 2L))) {
                throw new IllegalStateException("ship saw " + ship.result());
            }
            System.out.println("diamond complete: " + report.completed() + " steps, ship result " + ship.result());
        }
    }
}
