//! The function list, defined once. The Azure Functions adapter serves these names (and `host.json`
//! plus `functions/<name>/function.json` are checked against them by `tests/app_layout.rs`); the Lambda
//! adapter routes HTTP events to the HTTP ones and schedule events to the timer ones.

/// How a function is invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An HTTP request with this method (upper case).
    Http { method: &'static str },
    /// A schedule, set by this app setting on Azure (`%NAME%` in `function.json`) and by an EventBridge
    /// Scheduler schedule on AWS (the schedule's input names the job).
    Timer { schedule_setting: &'static str },
}

/// A scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    NewHireWatch,
    Backfill,
}

/// One function of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    pub trigger: Trigger,
}

/// Every function, in the order health lists them.
pub const FUNCTIONS: [Function; 4] = [
    Function {
        name: "lcw-joiner",
        trigger: Trigger::Http { method: "POST" },
    },
    Function {
        name: "new-hire-watch",
        trigger: Trigger::Timer {
            schedule_setting: "NEW_HIRE_WATCH_SCHEDULE",
        },
    },
    Function {
        name: "backfill",
        trigger: Trigger::Timer {
            schedule_setting: "BACKFILL_SCHEDULE",
        },
    },
    Function {
        name: "health",
        trigger: Trigger::Http { method: "GET" },
    },
];

/// The function names.
pub fn function_names() -> Vec<&'static str> {
    FUNCTIONS.iter().map(|f| f.name).collect()
}

/// The HTTP functions as `"METHOD /name"`.
pub fn http_routes() -> Vec<String> {
    FUNCTIONS
        .iter()
        .filter_map(|f| match f.trigger {
            Trigger::Http { method } => Some(format!("{method} /{}", f.name)),
            Trigger::Timer { .. } => None,
        })
        .collect()
}

/// The scheduled jobs' names.
pub fn job_names() -> Vec<&'static str> {
    FUNCTIONS
        .iter()
        .filter(|f| matches!(f.trigger, Trigger::Timer { .. }))
        .map(|f| f.name)
        .collect()
}

/// The HTTP method of an HTTP function.
pub fn http_method(name: &str) -> Option<&'static str> {
    FUNCTIONS.iter().find_map(|f| match f.trigger {
        Trigger::Http { method } if f.name == name => Some(method),
        _ => None,
    })
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::NewHireWatch => "new-hire-watch",
            Job::Backfill => "backfill",
        }
    }

    /// The job a name (any case, trimmed) stands for.
    pub fn from_name(raw: &str) -> Option<Job> {
        [Job::NewHireWatch, Job::Backfill]
            .into_iter()
            .find(|j| j.name().eq_ignore_ascii_case(raw.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_is_a_timer_function_and_every_timer_function_a_job() {
        let jobs: Vec<&str> = [Job::NewHireWatch, Job::Backfill]
            .iter()
            .map(|j| j.name())
            .collect();
        assert_eq!(jobs, job_names());
        assert_eq!(Job::from_name(" Backfill "), Some(Job::Backfill));
        assert_eq!(Job::from_name("health"), None);
        assert_eq!(http_routes(), ["POST /lcw-joiner", "GET /health"]);
        assert_eq!(http_method("health"), Some("GET"));
    }
}
