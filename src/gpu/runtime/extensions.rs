//! Per-device state kept for the layers above the runtime, one value per type, so that the
//! runtime's `Gpu` stores the planner's settings without knowing them.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A map from a type to the one value of it a `Gpu` holds, created on first use.
#[derive(Default)]
pub(crate) struct Extensions {
    values: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Extensions {
    /// The value of type `T`, made by `T::default()` the first time it is asked for.
    pub fn get<T: Any + Default + Send + Sync>(&self) -> Arc<T> {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let value = values
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        Arc::clone(value)
            .downcast::<T>()
            .expect("each entry holds a value of the type it is keyed by")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counter(Mutex<u32>);

    #[test]
    fn one_value_per_type_made_once() {
        let extensions = Extensions::default();
        *extensions.get::<Counter>().0.lock().unwrap() += 1;
        *extensions.get::<Counter>().0.lock().unwrap() += 1;
        assert_eq!(*extensions.get::<Counter>().0.lock().unwrap(), 2);
        assert_eq!(*extensions.get::<Mutex<u8>>().lock().unwrap(), 0);
    }
}
