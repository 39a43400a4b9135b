//! The loop driving the real load → observe → plan → apply path on a
//! [`FakeHost`]: a broken stack file leaves the host alone and is not
//! retried; fixing it converges again.

use crate::apply::{ApplyOptions, apply};
use crate::backend::observe;
use crate::desired::Desired;
use crate::fake::{Call, FakeHost};
use crate::plan::{PlanOptions, plan};
use crate::test_support::{STACK, host, plan_for};

use super::*;

const BROKEN: &str = "services:\n  web: [\n";

/// Reconciles the stack file in a temporary directory onto a fake host and
/// remembers every call the host had seen after each pass.
struct Stack {
    host: FakeHost,
    dir: tempfile::TempDir,
    calls_after: Vec<Vec<Call>>,
}

impl Stack {
    fn new(yaml: &str) -> Self {
        let stack = Self {
            host: host(),
            dir: tempfile::tempdir().expect("tempdir"),
            calls_after: Vec::new(),
        };
        write(&stack.file(), yaml);
        stack
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("compose.yaml")
    }

    fn load(&self) -> Result<Desired, PassError> {
        let options = rcompose_spec::LoadOptions {
            files: vec![self.file()],
            project_name: Some("shop".into()),
            working_dir: self.dir.path().to_path_buf(),
            ..Default::default()
        };
        let loaded =
            rcompose_spec::load(&options).map_err(|e| PassError::Invalid(e.to_string()))?;
        Ok(Desired::from_project(&loaded.project))
    }

    fn converge(&self) -> Outcome {
        let desired = self.load()?;
        let observed = observe(&self.host, &desired.project, &desired.images())
            .map_err(|e| PassError::Failed(e.to_string()))?;
        let plan = plan(&desired, &observed, &PlanOptions::default());
        let report = apply(&self.host, &plan, &ApplyOptions::default(), &|_| {});
        if !report.ok() {
            return Err(PassError::Failed(report.render_text()));
        }
        Ok(PassReport {
            summary: format!("{} operations applied", plan.ops.len()),
            changed: !plan.is_empty(),
            drift: Vec::new(),
        })
    }
}

impl Reconciler for Stack {
    async fn pass(&mut self, _triggered: &Triggered) -> Outcome {
        let outcome = self.converge();
        self.calls_after.push(self.host.calls());
        outcome
    }
}

fn write(path: &Path, yaml: &str) {
    std::fs::write(path, yaml).expect("write stack file");
}

#[tokio::test(start_paused = true)]
async fn a_broken_stack_file_leaves_the_host_alone_until_it_is_fixed() {
    let mut stack = Stack::new(STACK);
    let file = stack.file();
    let fixed = STACK.replace("FOO: a", "FOO: b");
    let driver = |tx: Sender<Trigger>| async move {
        let changed = || Trigger::Files(vec![PathBuf::from("compose.yaml")]);
        sleep(secs(5)).await;
        write(&file, BROKEN);
        tx.send(changed()).await.unwrap();
        sleep(secs(100)).await;
        write(&file, &fixed);
        tx.send(changed()).await.unwrap();
        sleep(secs(5)).await;
    };
    let logs = drive(&mut stack, &options(), driver).await;

    let results: Vec<PassResult> = logs.iter().map(|l| l.result).collect();
    assert_eq!(
        results,
        [PassResult::Ok, PassResult::Invalid, PassResult::Ok],
        "the broken file is not retried: {logs:#?}"
    );
    assert!(
        logs[1].message.contains("compose.yaml"),
        "{}",
        logs[1].message
    );
    assert_eq!(
        stack.calls_after[1], stack.calls_after[0],
        "the broken-file pass did not even look at the host"
    );
    assert!(logs[0].changed && logs[2].changed);
    let recreated = &stack.calls_after[2][stack.calls_after[1].len()..];
    assert!(
        recreated.contains(&Call::CreateContainer("shop-web-1".into())),
        "{recreated:?}"
    );
    let (_, again) = plan_for(
        &stack.host,
        &STACK.replace("FOO: a", "FOO: b"),
        &PlanOptions::default(),
    );
    assert!(again.is_empty(), "converged:\n{}", again.render_text());
}
