//! Test-only reading of the composed shader modules in naga's IR: what the registry's trust claims and the cost model rest on.

use naga::{Block, Expression, Function, Handle, Module, Statement};

use crate::gpu::kernels::MODULES;
use crate::gpu::runtime::pipelines::ShaderModule;

/// Uniform fields a loop may step by: the host sets each to at least 1 and far below
/// `i32::MAX` (the direct dx kernel's stride phases: a stride over a gcd).
const POSITIVE_UNIFORM_STEPS: &[&str] = &["phase_step_h", "phase_step_w"];

/// The module parsed and validated (with subgroups allowed: the registry's own tests check
/// which modules need them).
pub(crate) fn parse(module: &ShaderModule) -> Module {
    parse_with_info(module).0
}

/// The module parsed and validated, with naga's analysis of it (expression types, uniformity).
pub(crate) fn parse_with_info(module: &ShaderModule) -> (Module, naga::valid::ModuleInfo) {
    let parsed = naga::front::wgsl::parse_str(module.source)
        .unwrap_or_else(|e| panic!("{}: {}", module.name, e.emit_to_string(module.source)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&parsed)
    .unwrap_or_else(|e| panic!("{}: {}", module.name, e.emit_to_string(module.source)));
    (parsed, info)
}

/// The global variable a pointer expression ends at, through any chain of accesses.
pub(crate) fn root_global(
    f: &Function,
    mut e: Handle<Expression>,
) -> Option<Handle<naga::GlobalVariable>> {
    loop {
        match f.expressions[e] {
            Expression::GlobalVariable(g) => return Some(g),
            Expression::Access { base, .. } | Expression::AccessIndex { base, .. } => e = base,
            _ => return None,
        }
    }
}

/// The local variable a pointer expression ends at, through any chain of accesses.
pub(crate) fn root_local(
    f: &Function,
    mut e: Handle<Expression>,
) -> Option<Handle<naga::LocalVariable>> {
    loop {
        match f.expressions[e] {
            Expression::LocalVariable(v) => return Some(v),
            Expression::Access { base, .. } | Expression::AccessIndex { base, .. } => e = base,
            _ => return None,
        }
    }
}

/// The name of the uniform field `e` loads (`u.name`), if it is one.
fn uniform_field(m: &Module, f: &Function, e: Handle<Expression>) -> Option<String> {
    let Expression::Load { pointer } = f.expressions[e] else {
        return None;
    };
    let Expression::AccessIndex { base, index } = f.expressions[pointer] else {
        return None;
    };
    let Expression::GlobalVariable(g) = f.expressions[base] else {
        return None;
    };
    let global = &m.global_variables[g];
    if global.space != naga::AddressSpace::Uniform {
        return None;
    }
    match &m.types[global.ty].inner {
        naga::TypeInner::Struct { members, .. } => members[index as usize].name.clone(),
        _ => None,
    }
}

/// Every local variable stored to anywhere in `block` (nested blocks included), or passed by
/// pointer to a call.
fn stored_locals(f: &Function, block: &Block, out: &mut Vec<Handle<naga::LocalVariable>>) {
    for statement in block.iter() {
        match statement {
            Statement::Store { pointer, .. } => out.extend(root_local(f, *pointer)),
            Statement::Call { arguments, .. } => {
                out.extend(arguments.iter().filter_map(|a| root_local(f, *a)))
            }
            _ => {}
        }
        for child in child_blocks(statement) {
            stored_locals(f, child, out);
        }
    }
}

/// The blocks a statement runs (if branches, loop body and continuing, switch cases).
pub(crate) fn child_blocks(statement: &Statement) -> Vec<&Block> {
    match statement {
        Statement::Block(b) => vec![b],
        Statement::If { accept, reject, .. } => vec![accept, reject],
        Statement::Loop {
            body, continuing, ..
        } => vec![body, continuing],
        Statement::Switch { cases, .. } => cases.iter().map(|c| &c.body).collect(),
        _ => Vec::new(),
    }
}

/// Every expression a block evaluates (emits, or a call or other statement produces), nested
/// blocks included.
pub(crate) fn evaluated_in(block: &Block, out: &mut Vec<Handle<Expression>>) {
    for statement in block.iter() {
        match statement {
            Statement::Emit(range) => out.extend(range.clone()),
            Statement::Call {
                result: Some(r), ..
            } => out.push(*r),
            Statement::Atomic {
                result: Some(r), ..
            } => out.push(*r),
            Statement::WorkGroupUniformLoad { result, .. } => out.push(*result),
            Statement::SubgroupBallot { result, .. }
            | Statement::SubgroupGather { result, .. }
            | Statement::SubgroupCollectiveOperation { result, .. } => out.push(*result),
            _ => {}
        }
        for child in child_blocks(statement) {
            evaluated_in(child, out);
        }
    }
}

/// Whether `e` has the same value on every iteration of a loop that evaluates `inside` and
/// stores `changing`: it is evaluated before the loop, or inside it from such values, uniforms,
/// or locals the loop does not store.
fn invariant(
    m: &Module,
    f: &Function,
    e: Handle<Expression>,
    inside: &[Handle<Expression>],
    changing: &[Handle<naga::LocalVariable>],
) -> bool {
    if !inside.contains(&e) {
        return true;
    }
    let operand = |a: Handle<Expression>| invariant(m, f, a, inside, changing);
    match &f.expressions[e] {
        Expression::Load { pointer } => match (root_local(f, *pointer), root_global(f, *pointer)) {
            (Some(v), _) => !changing.contains(&v),
            (_, Some(g)) => m.global_variables[g].space == naga::AddressSpace::Uniform,
            _ => false,
        },
        Expression::Binary { left, right, .. } => operand(*left) && operand(*right),
        Expression::As { expr, .. } | Expression::Unary { expr, .. } => operand(*expr),
        Expression::Math {
            arg, arg1, arg2, ..
        } => [Some(*arg), *arg1, *arg2]
            .into_iter()
            .flatten()
            .all(operand),
        Expression::AccessIndex { base, .. } => operand(*base),
        _ => false,
    }
}

/// Why `statement` (a loop) is not a counted `for` that terminates, or `None` when it is: its
/// first statement breaks unless `i < bound` for a local `i` and a bound the loop does not
/// change, its continuing block only adds a positive literal or a positive uniform to `i`, and
/// nothing else stores `i`. With a bound below `i32::MAX` (every bound is a literal or a size
/// the host validated) the counter reaches it without wrapping.
fn counted_for_violation(m: &Module, f: &Function, statement: &Statement) -> Option<String> {
    let Statement::Loop {
        body,
        continuing,
        break_if,
    } = statement
    else {
        return None;
    };
    if break_if.is_some() {
        return Some("a `break if`".into());
    }
    let Some(Statement::If {
        condition,
        accept,
        reject,
    }) = body.iter().find(|s| !matches!(s, Statement::Emit(_)))
    else {
        return Some("no leading loop condition (a `loop` or `while`?)".into());
    };
    if !accept.is_empty() || !matches!(reject.iter().collect::<Vec<_>>()[..], [Statement::Break]) {
        return Some("the first statement is not a `for` condition".into());
    }
    let Expression::Binary {
        op: naga::BinaryOperator::Less,
        left,
        right: bound,
    } = f.expressions[*condition]
    else {
        return Some("the condition is not `counter < bound`".into());
    };
    let Expression::Load { pointer } = f.expressions[left] else {
        return Some("the condition does not compare a counter".into());
    };
    let Expression::LocalVariable(counter) = f.expressions[pointer] else {
        return Some("the counter is not a local variable".into());
    };
    let mut in_body = Vec::new();
    stored_locals(f, body, &mut in_body);
    if in_body.contains(&counter) {
        return Some("the body stores the counter".into());
    }
    let mut in_continuing = Vec::new();
    stored_locals(f, continuing, &mut in_continuing);
    let mut inside = Vec::new();
    evaluated_in(body, &mut inside);
    evaluated_in(continuing, &mut inside);
    if !invariant(
        m,
        f,
        bound,
        &inside,
        &[in_body.clone(), in_continuing].concat(),
    ) {
        return Some("the bound may change inside the loop".into());
    }
    let stores: Vec<&Statement> = continuing
        .iter()
        .filter(|s| !matches!(s, Statement::Emit(_)))
        .collect();
    let [Statement::Store { pointer, value }] = stores[..] else {
        return Some("the update is not one store".into());
    };
    if root_local(f, *pointer) != Some(counter) {
        return Some("the update stores something else".into());
    }
    let Expression::Binary {
        op: naga::BinaryOperator::Add,
        left,
        right: step,
    } = f.expressions[*value]
    else {
        return Some("the update is not an addition".into());
    };
    if !matches!(f.expressions[left], Expression::Load { pointer } if root_local(f, pointer) == Some(counter))
    {
        return Some("the update does not add to the counter".into());
    }
    let positive = match f.expressions[step] {
        Expression::Literal(naga::Literal::U32(v)) => v > 0,
        Expression::Literal(naga::Literal::I32(v)) => v > 0,
        Expression::Constant(c) => matches!(
            m.global_expressions[m.constants[c].init],
            naga::Expression::Literal(naga::Literal::U32(1..))
                | naga::Expression::Literal(naga::Literal::I32(1..))
        ),
        _ => {
            uniform_field(m, f, step).is_some_and(|n| POSITIVE_UNIFORM_STEPS.contains(&n.as_str()))
        }
    };
    (!positive).then(|| "the step is not a positive literal or a positive uniform".into())
}

fn loop_violations(m: &Module, f: &Function, block: &Block, out: &mut Vec<String>) {
    for statement in block.iter() {
        if let Some(why) = counted_for_violation(m, f, statement) {
            out.push(format!("{}: {why}", f.name.as_deref().unwrap_or("?")));
        }
        for child in child_blocks(statement) {
            loop_violations(m, f, child, out);
        }
    }
}

/// Every function of a module that claims its loops terminate has only counted `for` loops:
/// what makes turning off wgpu's loop bounding sound (see `Trust::loops_terminate`).
#[test]
fn every_loop_of_a_terminating_module_is_a_counted_for() {
    for module in MODULES.iter().filter(|m| m.trust.loops_terminate) {
        let parsed = parse(module);
        let mut violations = Vec::new();
        let functions = parsed
            .functions
            .iter()
            .map(|(_, f)| f)
            .chain(parsed.entry_points.iter().map(|e| &e.function));
        for f in functions {
            loop_violations(&parsed, f, &f.body, &mut violations);
        }
        assert!(violations.is_empty(), "{}: {violations:#?}", module.name);
    }
}

/// The checker refuses what it must: a `while`, a counter stored in the body, a zero step, a
/// bound the body changes.
#[test]
fn the_loop_checker_refuses_loops_that_may_not_end() {
    let violations = |body: &str| {
        let source = format!("fn f(n: u32) -> u32 {{ var s = 0u; var m = n; {body} return s; }}");
        let parsed = naga::front::wgsl::parse_str(&source).unwrap();
        let f = &parsed.functions.iter().next().unwrap().1;
        let mut out = Vec::new();
        loop_violations(&parsed, f, &f.body, &mut out);
        out
    };
    assert!(violations("for (var i = 0u; i < n; i++) { s += i; }").is_empty());
    assert!(violations("for (var i = 0u; i < 4u; i += 2u) { s += i; }").is_empty());
    assert!(!violations("var i = 0u; while (i < n) { i++; }").is_empty());
    assert!(!violations("for (var i = 0u; i < n; i++) { i = 0u; }").is_empty());
    assert!(!violations("for (var i = 0u; i < n; i += 0u) { s += i; }").is_empty());
    assert!(!violations("for (var i = 0u; i < m; i++) { m++; }").is_empty());
    assert!(!violations("for (var i = 0u; i <= n; i++) { s += i; }").is_empty());
    assert!(!violations("loop { s++; if (s > n) { break; } }").is_empty());
}
