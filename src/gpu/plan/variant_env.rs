//! A kernel variant forced through an environment variable, with a name that is no variant kept to be reported.

use crate::error::{invalid, Error};

/// A variable's value that names no variant: every call it would govern is then an `Err`
/// saying so, rather than the planner running as if the variable were not set.
#[derive(Debug)]
pub(crate) struct UnknownVariant {
    variable: &'static str,
    name: String,
}

/// The variant `variable` names (unset or empty: none), and its value where that names none.
pub(crate) fn variant_from_env<V: Copy>(
    variable: &'static str,
    from_name: impl Fn(&str) -> Option<V>,
) -> (Option<V>, Option<UnknownVariant>) {
    let value = std::env::var(variable).ok().filter(|v| !v.is_empty());
    let variant = value.as_deref().and_then(from_name);
    let unknown = value
        .filter(|_| variant.is_none())
        .map(|name| UnknownVariant { variable, name });
    (variant, unknown)
}

impl UnknownVariant {
    /// The error for `op`: the variable, its value, and the `kind`'s variants by name.
    pub(crate) fn error<'a>(
        &self,
        op: &'static str,
        kind: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Error {
        invalid(
            op,
            format!(
                "{}={:?} names no {kind} (the variants: {})",
                self.variable,
                self.name,
                names.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )
    }
}
