// The page script of rfgen_jax/tools/app.py (served in the page's <head>): dragging the joints of the
// pose editor (app.editor_html). The ids #pose-editor and #pose-json are app.EDITOR_ID and
// app.POSE_BOX_ID.
(function () {
  // Event delegation on the document, so it keeps working when Gradio re-renders the editor's HTML.
  let drag = null;
  function svgPoint(svg, event) {
    const pt = svg.createSVGPoint(); pt.x = event.clientX; pt.y = event.clientY;
    return pt.matrixTransform(svg.getScreenCTM().inverse());
  }
  function poseBox() { return document.querySelector('#pose-json textarea, #pose-json input'); }
  function move(circle, p) {
    const svg = circle.ownerSVGElement, vb = svg.viewBox.baseVal;
    const x = Math.min(Math.max(p.x, 0), vb.width - 1e-3), y = Math.min(Math.max(p.y, 0), vb.height - 1e-3);
    circle.setAttribute('cx', x); circle.setAttribute('cy', y);
    const j = circle.dataset.joint;
    svg.querySelectorAll("line[data-a='" + j + "']").forEach(l => { l.setAttribute('x1', x); l.setAttribute('y1', y); });
    svg.querySelectorAll("line[data-b='" + j + "']").forEach(l => { l.setAttribute('x2', x); l.setAttribute('y2', y); });
  }
  function commit(circle) {
    const box = poseBox(); if (!box) return;
    let pose; try { pose = JSON.parse(box.value); } catch (e) { return; }
    const j = Number(circle.dataset.joint);
    // The SVG draws pixel (y, x) at (x + 0.5, y + 0.5).
    pose[j] = [Math.round((Number(circle.getAttribute('cy')) - 0.5) * 10) / 10,
               Math.round((Number(circle.getAttribute('cx')) - 0.5) * 10) / 10];
    box.value = JSON.stringify(pose);
    box.dispatchEvent(new Event('input', { bubbles: true }));
    box.dispatchEvent(new Event('change', { bubbles: true }));
  }
  document.addEventListener('pointerdown', function (e) {
    const c = e.target.closest && e.target.closest('#pose-editor circle.joint');
    if (!c) return;
    e.preventDefault(); drag = c; c.style.cursor = 'grabbing';
  });
  document.addEventListener('pointermove', function (e) {
    if (!drag) return; e.preventDefault(); move(drag, svgPoint(drag.ownerSVGElement, e));
  });
  document.addEventListener('pointerup', function (e) {
    if (!drag) return; const c = drag; drag = null; c.style.cursor = 'grab';
    move(c, svgPoint(c.ownerSVGElement, e)); commit(c);
  });
})();
