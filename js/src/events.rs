//! `on(type, handler)`: the core's events, as plain objects, to JavaScript
//! handlers.

use std::cell::RefCell;

use js_sys::Function;
use oncely::{Event, EventKind};
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;

use crate::error::{invalid, set, to_js};

/// The event types a handler can subscribe to ("*" is all of them).
const TYPES: [&str; 10] = [
    "created", "attempt", "retry", "joined", "replayed", "conflict", "settled", "failed",
    "offline", "*",
];

/// The handlers subscribed with `on`.
#[derive(Default)]
pub(crate) struct Listeners {
    handlers: RefCell<Vec<(u32, &'static str, Function)>>,
    next_id: std::cell::Cell<u32>,
}

impl Listeners {
    /// Subscribes `handler` to `kind`; returns the function that unsubscribes it.
    pub(crate) fn add(
        self: &std::rc::Rc<Self>,
        kind: &str,
        handler: Function,
    ) -> Result<JsValue, JsValue> {
        let kind = TYPES.into_iter().find(|t| *t == kind).ok_or_else(|| {
            invalid("on(): the event type must be one of created, attempt, retry, joined, replayed, conflict, settled, failed, offline, *")
        })?;
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        self.handlers.borrow_mut().push((id, kind, handler));
        let listeners = std::rc::Rc::downgrade(self);
        Ok(Closure::once_into_js(move || {
            if let Some(listeners) = listeners.upgrade() {
                listeners.handlers.borrow_mut().retain(|(i, ..)| *i != id);
            }
        }))
    }

    /// Hands `event` to the handlers of its type. A handler that throws
    /// does not disturb the intent or the other handlers.
    pub(crate) fn dispatch(&self, event: &Event) {
        let Some(kind) = type_of(&event.kind) else {
            return;
        };
        // Handlers run outside the borrow: one may subscribe or unsubscribe.
        let handlers: Vec<Function> = self
            .handlers
            .borrow()
            .iter()
            .filter(|(_, k, _)| *k == kind || *k == "*")
            .map(|(_, _, handler)| handler.clone())
            .collect();
        // Nobody listening (the usual case): no object to build.
        if handlers.is_empty() {
            return;
        }
        let object = to_object(kind, event);
        for handler in handlers {
            let _ = handler.call1(&JsValue::NULL, &object);
        }
    }
}

/// The event's type, as `on` names it.
fn type_of(kind: &EventKind) -> Option<&'static str> {
    Some(match kind {
        EventKind::Created => "created",
        EventKind::Attempt { .. } => "attempt",
        EventKind::RetryScheduled { .. } => "retry",
        EventKind::Joined => "joined",
        EventKind::Replayed => "replayed",
        EventKind::Conflict => "conflict",
        EventKind::Offline => "offline",
        EventKind::Settled { .. } => "settled",
        EventKind::Failed { .. } => "failed",
        _ => return None,
    })
}

/// The event as `{ type, intent, key, at, ... }`.
fn to_object(kind: &'static str, event: &Event) -> JsValue {
    let object: JsValue = js_sys::Object::new().into();
    match &event.kind {
        EventKind::Attempt { number } => set(&object, "attempt", &(*number).into()),
        EventKind::RetryScheduled {
            attempt,
            delay,
            reason,
            status,
        } => {
            set(&object, "attempt", &(*attempt).into());
            set(&object, "delayMs", &(delay.as_millis() as f64).into());
            set(&object, "reason", &reason.as_str().into());
            if let Some(status) = status {
                set(&object, "status", &(*status).into());
            }
        }
        EventKind::Settled { status, attempts } => {
            set(&object, "status", &(*status).into());
            set(&object, "attempt", &(*attempts).into());
        }
        EventKind::Failed { error } => set(&object, "error", &to_js(error)),
        _ => {}
    }
    set(&object, "type", &kind.into());
    set(&object, "intent", &event.intent.as_str().into());
    if let Some(key) = &event.key {
        set(&object, "key", &key.as_str().into());
    }
    set(&object, "at", &(event.at_ms as f64).into());
    object
}
