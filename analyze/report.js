// SPDX-License-Identifier: MIT
// The HTML report's script (embedded into the page at build time). Data
// comes from the JSON block; names only ever reach the page through
// textContent, so a hostile file name cannot inject markup.
'use strict';
window.addEventListener('error', function (ev) {
	var d = document.createElement('div');
	d.id = 'lp-error';
	d.textContent = 'error: ' + ev.message;
	document.body.appendChild(d);
});
(function () {
	var D = JSON.parse(document.getElementById('lp-data').textContent);
	var A = D.analysis || {}, DIFF = D.diff || null;
	var STATUS = {
		added: ['added', '#2f9e5a'], grew: ['grew', '#d64545'], shrank: ['shrank', '#1f8f9c'],
		changed: ['changed, same size', '#e0a526'], renamed: ['renamed', '#3a6fc4'], mode: ['mode changed', '#7b57c2'],
		removed: ['removed', '#8a8f98']
	};
	var KIND = {
		c: ['function code', '#2f9e5a'], n: ['Node package', '#3a6fc4'], p: ['Python distribution', '#7b57c2'],
		v: ['vendored package', '#1f8f9c'], b: ['runtime / base image', '#7d848f'], x: ['native binary', '#e07b24'],
		d: ['data / asset', '#c29b12'], j: ['prunable junk', '#d43f3f'], m: ['small items, grouped', '#aab0ba']
	};
	var ACTION = {
		'strip': ['strip', '#e07b24'], 'dedupe': ['dedupe', '#1f8f9c'], 'prune-foreign': ['foreign', '#d43f3f'],
		'prune-junk': ['junk', '#d43f3f']
	};

	function el(t, txt, cls) {
		var e = document.createElement(t);
		if (txt !== undefined && txt !== null)
			e.textContent = String(txt);
		if (cls)
			e.className = cls;
		return e;
	}
	function $(id) { return document.getElementById(id); }
	function hs(n) {
		var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
		if (n < 1024)
			return n + ' B';
		while (n >= 1024 && i < 4) { n /= 1024; i++; }
		return (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)) + ' ' + u[i];
	}
	function pct(x) { return (x * 100).toFixed(x < 0.001 ? 2 : 1) + '%'; }
	function darker(hex, f) {
		var v = parseInt(hex.slice(1), 16), r = v >> 16, g = (v >> 8) & 255, b = v & 255;
		function c(x) { return Math.max(0, Math.min(255, Math.round(x * f))); }
		return 'rgb(' + c(r) + ',' + c(g) + ',' + c(b) + ')';
	}

	/* ---- header: what it is and the budgets ---- */
	var tgt = A.target || {}, tot = A.totals || {};
	$('sub').textContent = (tgt.path || '') + ' (' + (tgt.kind || '?') + ')';
	function stat(v, label, cls) {
		var s = el('div', null, 'stat');
		s.appendChild(el('b', v, cls));
		s.appendChild(el('span', label));
		$('stats').appendChild(s);
	}
	function sd(n) { return (n > 0 ? '+' : n < 0 ? '−' : '±') + hs(Math.abs(n)); }
	if (DIFF) {
		$('title').textContent = 'lambdapack analyze --diff';
		$('sub').textContent = DIFF.old + '  →  ' + DIFF.new;
		stat(sd(DIFF.delta_bytes), 'unzipped: ' + hs(DIFF.old_unzipped_bytes) + ' → ' + hs(DIFF.new_unzipped_bytes),
			DIFF.delta_bytes > 0 ? 'minus' : 'plus');
		var Z = DIFF.zipped || {};
		if (Z.delta_bytes !== null && Z.delta_bytes !== undefined)
			stat(sd(Z.delta_bytes), (Z.measure === 'image-compressed' ? 'image, compressed: ' : Z.estimated ? 'zipped (estimate): ' : 'zipped: ') +
				hs(Z.old_bytes) + ' → ' + hs(Z.new_bytes), Z.delta_bytes > 0 ? 'minus' : 'plus');
		var K = DIFF.counts || {};
		['added', 'removed', 'changed', 'renamed', 'mode'].forEach(function (k) {
			stat(String(K[k] || 0), k === 'mode' ? 'new mode' : k);
		});
	}
	if (!DIFF)
		stat(hs(tot.unzipped_bytes || 0), 'unzipped');
	if (!DIFF && tot.zipped_bytes !== null && tot.zipped_bytes !== undefined && A.image === null)
		stat((tot.zipped_estimated ? '≈ ' : '') + hs(tot.zipped_bytes), tot.zipped_estimated ? 'zipped (estimate)' : 'zipped');
	if (A.image)
		stat(hs(A.image.compressed_bytes || 0), 'image, compressed');
	if (!DIFF)
		stat(String(tot.files || 0), tot.files === 1 ? 'file' : 'files');
	// The limits, as a list of {name, used, limit} whatever the report's shape.
	var LIM = Array.isArray(A.budgets) ? A.budgets : Array.isArray(A.limits) ? A.limits :
		A.limits ? Object.keys(A.limits).map(function (k) { var v = A.limits[k]; v.name = v.name || k; return v; }) : [];
	LIM.forEach(function (b) {
		var pc = typeof b.percent === 'number' ? b.percent : b.limit ? 100 * b.used / b.limit : 0;
		var d = el('div', null, 'budget' + (b.over ? ' over' : pc > 80 ? ' warn' : ''));
		d.appendChild(el('b', pc.toFixed(1) + '%'));
		var tr = el('div', null, 'track'), f = el('div', null, 'fill');
		f.style.width = Math.min(100, Math.max(0.5, pc)) + '%';
		tr.appendChild(f);
		d.appendChild(tr);
		d.appendChild(el('span', b.name + ' limit: ' + hs(b.used) + ' of ' + hs(b.limit) +
			(b.over ? ', over by ' + hs(b.over_by || b.used - b.limit) : '')));
		$('stats').appendChild(d);
	});

	/* ---- the tree: parents, paths, lookup ---- */
	var nodes = [], byPath = {};
	function prep(n, parent, group) {
		n.parent = parent;
		n.id = nodes.length;
		n.nf = 0;
		n.sv = 0;
		nodes.push(n);
		if (n.k === 'm' || !parent)
			n.path = null;
		else if (n.b !== undefined)
			n.path = n.b;
		else
			n.path = parent.path ? parent.path + '/' + n.n : n.n;
		if (n.path && !byPath[n.path])
			byPath[n.path] = n;
		(n.c || []).forEach(function (k) { prep(k, n, group); });
	}
	var T = D.tree || { n: '/', s: 0, k: 'm', c: [] };
	prep(T, null);
	var LT = (D.layers || []).map(function (t) { if (t) prep(t, null); return t; });
	// The deepest node drawn for a path (a file in a "(N more)" box: its directory).
	function locate(path) {
		if (!path)
			return null;
		for (var p = path; p; p = p.lastIndexOf('/') > 0 ? p.slice(0, p.lastIndexOf('/')) : '')
			if (byPath[p] && rootOf(byPath[p]) === T)
				return byPath[p];
		return null;
	}
	function rootOf(n) { while (n.parent) n = n.parent; return n; }
	function mark(path, f, bytes) {
		for (var n = locate(path); n; n = n.parent) {
			n.nf += f;
			n.sv += bytes;
		}
	}
	var F = A.findings || [], SV = A.savings || { total: 0, items: [] };
	F.forEach(function (f) { mark(f.path, 1, 0); });
	(SV.items || []).forEach(function (i) { mark(i.path, 0, i.bytes); });
	// A diff: every change present in the new tree marks its box and the boxes around it.
	var ROOT = DIFF && DIFF.compared_root && DIFF.compared_root.new ? DIFF.compared_root.new + '/' : '';
	function markChange(c) {
		var own = locate(ROOT + c.name), w = Math.max(Math.abs(c.delta), 1);
		for (var n = own; n; n = n.parent) {
			n.ch = n.ch || { n: 0, net: 0, w: 0, top: c.status };
			n.ch.n++;
			n.ch.net += c.delta;
			if (w > n.ch.w) {
				n.ch.w = w;
				n.ch.top = c.status;
			}
			if (n === own && n.path === ROOT + c.name)
				n.ch.own = c;
		}
	}
	if (DIFF)
		(DIFF.files || []).forEach(function (c) { if (c.status !== 'removed') markChange(c); });
	function colorOf(n, container) {
		if (!DIFF)
			return container ? darker((KIND[n.k] || KIND.m)[1], 0.72) : (KIND[n.k] || KIND.m)[1];
		if (!n.ch)
			return container ? '#8d939d' : '#d3d6dc';
		return container ? darker(STATUS[n.ch.top][1], 0.72) : STATUS[n.ch.top][1];
	}

	/* ---- the treemap ---- */
	var tm = $('tm'), tip = $('tip'), view = [T], tiles = {}, MAXD = 2, HEAD = 16, CW = 6.3;
	function weight(n, atRoot) { return atRoot && n.w && n.w > n.s ? n.w : n.s; }
	function squarify(items, x, y, w, h, out) {
		var total = 0;
		items.forEach(function (i) { total += i.v; });
		if (total <= 0 || w <= 0 || h <= 0)
			return;
		var scale = w * h / total, i = 0;
		function worst(row, sum, side) {
			var mx = 0, mn = Infinity, s2 = sum * scale * sum * scale;
			row.forEach(function (q) { var a = q.v * scale; mx = Math.max(mx, a); mn = Math.min(mn, a); });
			return Math.max(side * side * mx / s2, s2 / (side * side * mn));
		}
		function place(row, sum, last) {
			var a = sum * scale, p;
			if (w >= h) {
				var cw = last ? w : a / h;
				p = y;
				row.forEach(function (q) { var ch = q.v * scale / cw; out.push([q, x, p, cw, ch]); p += ch; });
				x += cw; w -= cw;
			} else {
				var rh = last ? h : a / w;
				p = x;
				row.forEach(function (q) { var c = q.v * scale / rh; out.push([q, p, y, c, rh]); p += c; });
				y += rh; h -= rh;
			}
		}
		var row = [], sum = 0;
		while (i < items.length) {
			var it = items[i], side = Math.min(w, h);
			if (!row.length || worst(row.concat([it]), sum + it.v, side) <= worst(row, sum, side)) {
				row.push(it); sum += it.v; i++;
				continue;
			}
			place(row, sum, false);
			row = []; sum = 0;
		}
		if (row.length)
			place(row, sum, true);
	}
	// A label when it fits: name and size, else the name, else a cut name.
	function label(d, n, w, h) {
		var room = Math.floor((w - 8) / CW);
		if (h < 13 || room < 4)
			return false;
		var full = n.n + ' ' + hs(n.s), l = el('span', null, 'l');
		if (full.length <= room) {
			l.appendChild(document.createTextNode(n.n));
			l.appendChild(el('small', hs(n.s)));
		} else {
			l.textContent = n.n.length <= room ? n.n : n.n.slice(0, room - 1) + '…';
		}
		d.appendChild(l);
		return true;
	}
	function tile(n, x, y, w, h, depth) {
		if (w < 1.5 || h < 1.5)
			return;
		var d = el('div', null, 't'), kids = n.c && n.c.length;
		d.style.left = x + 'px'; d.style.top = y + 'px';
		d.style.width = w + 'px'; d.style.height = h + 'px';
		d.setAttribute('data-i', n.id);
		d.setAttribute('data-kind', n.k);
		if (n.path)
			d.setAttribute('data-path', n.path);
		if (n.b !== undefined)
			d.setAttribute('data-group', '1');
		if (n.nf)
			d.className += ' f';
		if (DIFF && n.ch)
			d.setAttribute('data-change', n.ch.top);
		tiles[n.id] = d;
		tm.appendChild(d);
		if (kids && depth < MAXD && w >= 60 && h >= HEAD + 22) {
			d.className += ' g';
			d.style.background = colorOf(n, true);
			label(d, n, w, h);
			nest(n, x + 2, y + HEAD, w - 4, h - HEAD - 2, depth + 1, false);
		} else {
			d.style.background = colorOf(n, false);
			if (DIFF && !n.ch)
				d.className += ' u';
			label(d, n, w, h);
		}
	}
	function nest(node, x, y, w, h, depth, atRoot) {
		var items = (node.c || []).map(function (k) { return { v: weight(k, atRoot), n: k }; })
			.filter(function (i) { return i.v > 0; });
		items.sort(function (a, b) { return b.v - a.v; });
		var out = [];
		squarify(items, x, y, w, h, out);
		out.forEach(function (o) { tile(o[0].n, o[1], o[2], o[3], o[4], depth); });
	}
	function draw() {
		var node = view[view.length - 1], cr = $('crumbs');
		tm.textContent = '';
		cr.textContent = '';
		tiles = {};
		view.forEach(function (n, i) {
			if (i)
				cr.appendChild(document.createTextNode(' › '));
			var nm = i ? n.n : (n === T ? 'everything' : n.n);
			var a = el(i === view.length - 1 ? 'span' : 'a', nm, i === view.length - 1 ? 'cur' : '');
			if (i < view.length - 1)
				a.addEventListener('click', function () { view = view.slice(0, i + 1); draw(); });
			cr.appendChild(a);
		});
		cr.appendChild(el('span', hs(node.s), 'sz'));
		nest(node, 0, 0, tm.clientWidth || 900, tm.clientHeight || 560, 0, view.length === 1);
		var scaled = view.length === 1 && (node.c || []).some(function (k) { return k.w && k.w > k.s; });
		$('note').textContent = DIFF ? 'The boxes are the new version: coloured ones changed, grey ones did not. Removed files are listed on the right. Click a box to zoom in.' :
			'Click a box to zoom in, the path above to zoom out. ' +
			(scaled ? 'The function code is drawn at 4% of the area at least so that it stays visible (its size is in its label). ' : '') +
			'A yellow corner marks a box with findings.';
		legend();
		$('lp-rendered').setAttribute('data-tiles', String(tm.querySelectorAll('.t').length));
	}
	function legend() {
		var seen = {}, lg = $('legend');
		if (DIFF) {
			var st = {};
			nodes.forEach(function (n) { if (n.ch) st[n.ch.top] = 1; });
			lg.textContent = '';
			Object.keys(STATUS).concat(['unchanged']).forEach(function (k) {
				if (k !== 'unchanged' && !st[k])
					return;
				var s = el('span'), i = el('i');
				i.style.background = k === 'unchanged' ? '#d3d6dc' : STATUS[k][1];
				s.appendChild(i);
				s.appendChild(document.createTextNode(k === 'unchanged' ? 'unchanged' : STATUS[k][0]));
				lg.appendChild(s);
			});
			return;
		}
		function walk(n, d) { seen[n.k] = 1; if (d < 3) (n.c || []).forEach(function (k) { walk(k, d + 1); }); }
		walk(view[view.length - 1], 0);
		lg.textContent = '';
		Object.keys(KIND).forEach(function (k) {
			if (!seen[k])
				return;
			var s = el('span'), i = el('i');
			i.style.background = KIND[k][1];
			s.appendChild(i);
			s.appendChild(document.createTextNode(KIND[k][0]));
			lg.appendChild(s);
		});
	}
	function zoomTo(n) {
		var chain = [];
		for (var q = n; q; q = q.parent)
			chain.unshift(q);
		view = chain;
		draw();
	}
	tm.addEventListener('click', function (ev) {
		var t = ev.target.closest('.t');
		if (!t)
			return;
		var n = nodes[+t.getAttribute('data-i')], z = n.c && n.c.length ? n : n.parent;
		if (z && z !== view[view.length - 1])
			zoomTo(z);
	});
	tm.addEventListener('mousemove', function (ev) {
		var t = ev.target.closest('.t');
		if (!t) {
			tip.style.display = 'none';
			return;
		}
		var n = nodes[+t.getAttribute('data-i')], top = view[0];
		tip.textContent = '';
		tip.appendChild(el('b', n.path || n.n));
		tip.appendChild(el('div', hs(n.s) + ', ' + pct(top.s ? n.s / top.s : 0) + ' of ' + (top === T ? 'everything' : top.n) +
			(n.parent && n.parent !== top ? ', ' + pct(n.parent.s ? n.s / n.parent.s : 0) + ' of ' + n.parent.n : '')));
		tip.appendChild(el('div', (KIND[n.k] || KIND.m)[0] + (n.g ? ' (' + n.g + ')' : ''), 'k'));
		if (DIFF && n.ch && n.ch.own) {
			var c = n.ch.own;
			tip.appendChild(el('div', STATUS[c.status][0] + ': ' + hs(c.old_bytes) + ' → ' + hs(c.new_bytes) +
				(c.old_name ? ', was ' + c.old_name : '') + (c.old_mode ? ', mode ' + c.old_mode + ' → ' + c.new_mode : '')));
		} else if (DIFF && n.ch) {
			tip.appendChild(el('div', n.ch.n + (n.ch.n === 1 ? ' change' : ' changes') + ' in here, net ' + sd(n.ch.net)));
		} else if (DIFF) {
			tip.appendChild(el('div', 'unchanged', 'k'));
		}
		if (n.w && n.w > n.s && view.length === 1)
			tip.appendChild(el('div', 'drawn larger than its size so that it stays visible', 'k'));
		if (n.sv)
			tip.appendChild(el('div', 'pack --optimize would save ' + hs(n.sv) + ' here'));
		if (n.nf)
			tip.appendChild(el('div', n.nf + (n.nf === 1 ? ' finding' : ' findings') + ' here'));
		tip.style.display = 'block';
		var x = ev.clientX + 14, y = ev.clientY + 14;
		if (x + tip.offsetWidth > window.innerWidth - 4)
			x = ev.clientX - tip.offsetWidth - 10;
		if (y + tip.offsetHeight > window.innerHeight - 4)
			y = ev.clientY - tip.offsetHeight - 10;
		tip.style.left = x + 'px';
		tip.style.top = y + 'px';
	});
	tm.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
	window.addEventListener('resize', function () { draw(); });

	// From the side panel to the box: zoom so that the box is drawn, then flash it.
	function reveal(path, flash) {
		var n = locate(path);
		if (!n)
			return;
		if (flash) {
			setRoot(T, null);
			if (!tiles[n.id])
				zoomTo(n.parent || n);
			tm.scrollIntoView({ block: 'nearest' });
		}
		var t = tiles[n.id];
		if (t)
			t.classList.add('hl');
	}
	function unhl() {
		Array.prototype.forEach.call(tm.querySelectorAll('.hl'), function (t) { t.classList.remove('hl'); });
	}
	function row(list, path, parts) {
		var li = el('li');
		parts.forEach(function (p) { li.appendChild(p); });
		if (path) {
			li.title = path;
			li.addEventListener('mouseenter', function () { reveal(path, false); });
			li.addEventListener('mouseleave', unhl);
			li.addEventListener('click', function () { unhl(); reveal(path, true); });
		}
		list.appendChild(li);
	}

	function shortPath(p) { return p.length > 36 ? '…' + p.slice(-35) : p; }
	// The longest lists fold: the first rows show, the rest behind a link.
	function fold(ul, n) {
		var kids = ul.children;
		if (kids.length <= n + 2)
			return;
		for (var i = n; i < kids.length; i++)
			kids[i].style.display = 'none';
		var more = el('li', 'show ' + (kids.length - n) + ' more', 'muted');
		more.addEventListener('click', function () {
			for (var j = n; j < kids.length; j++)
				kids[j].style.display = '';
			more.style.display = 'none';
		});
		ul.appendChild(more);
	}
	/* ---- side panel, a diff: the changes, each linked to its box ---- */
	function changeList(box, title, list, root) {
		box.appendChild(el('h2', title));
		if (!list.length) {
			box.appendChild(el('div', 'No change.', 'ok'));
			return;
		}
		var ul = el('ul', null, 'rows');
		list.forEach(function (c) {
			var s = STATUS[c.status] || [c.status, '#5b6b86'], b = el('span', c.status, 'badge'), p = el('span', null, 'p');
			b.style.background = s[1];
			p.appendChild(document.createTextNode(shortPath(c.name)));
			if (c.old_name)
				p.appendChild(el('span', 'was ' + c.old_name, 'fmsg'));
			if (c.old_mode)
				p.appendChild(el('span', 'mode ' + c.old_mode + ' → ' + c.new_mode, 'fmsg'));
			if (c.status === 'removed')
				p.style.textDecoration = 'line-through';
			row(ul, c.status === 'removed' ? null : root + c.name, [b, p, el('span', sd(c.delta), 'n')]);
		});
		fold(ul, 12);
		box.appendChild(ul);
	}
	if (DIFF) {
		var pr = ROOT;
		changeList($('savings'), (DIFF.packages || []).length + ' changed ' + ((DIFF.packages || []).length === 1 ? 'package' : 'packages'),
			DIFF.packages || [], pr);
		changeList($('findings'), (DIFF.files || []).length + ' changed ' + ((DIFF.files || []).length === 1 ? 'file' : 'files'),
			DIFF.files || [], pr);
		var cr0 = DIFF.compared_root || {};
		if (cr0.old_files_outside || cr0.new_files_outside)
			$('findings').appendChild(el('div', 'Compared: the task root of the image (' + (cr0.old || cr0.new) + '); ' +
				(cr0.old_files_outside + cr0.new_files_outside) + ' files of the base image outside it are not compared.', 'muted'));
	}
	/* ---- side panel: what can go, findings ---- */
	var sv = $('savings');
	if (!DIFF) {
		sv.appendChild(el('h2', 'What can go'));
		sv.appendChild(el('div', hs(SV.total || 0), 'big'));
		sv.appendChild(el('div', 'saved by pack --optimize (' + pct(tot.unzipped_bytes ? (SV.total || 0) / tot.unzipped_bytes : 0) +
			' of the unzipped size)', 'muted'));
		var cat = el('div', null, 'cat');
		[['strip', 'strip debug info'], ['dedupe', 'duplicate files'], ['prune_foreign', 'binaries for another platform'],
			['prune_junk', 'docs, tests, caches, maps']].forEach(function (c) {
			var v = SV[c[0]] || { bytes: 0, count: 0 };
			cat.appendChild(el('span', c[1]));
			cat.appendChild(el('span', v.count + (v.count === 1 ? ' file' : ' files'), 'n muted'));
			cat.appendChild(el('span', hs(v.bytes), 'n'));
		});
		sv.appendChild(cat);
		if ((SV.items || []).length) {
			var ul = el('ul', null, 'rows');
			SV.items.forEach(function (i) {
				var a = ACTION[i.action] || [i.action, '#5b6b86'], b = el('span', a[0], 'badge');
				b.style.background = a[1];
				row(ul, i.path, [b, el('span', shortPath(i.path), 'p'), el('span', hs(i.bytes), 'n')]);
			});
			fold(ul, 10);
			sv.appendChild(ul);
		}
		if (A.duplicates && A.duplicates.items && A.duplicates.items.length)
			sv.appendChild(el('div', A.duplicates.items.length + (A.duplicates.items.length === 1 ? ' group' : ' groups') +
				' of identical files, ' + hs(A.duplicates.wasted_bytes) + ' in extra copies', 'muted'));
		var fd = $('findings');
		if (F.length) {
			fd.appendChild(el('h2', F.length + (F.length === 1 ? ' finding' : ' findings')));
			var fl = el('ul', null, 'rows');
			F.forEach(function (f) {
				var p = el('span', null, 'p');
				p.style.direction = 'ltr';
				p.style.whiteSpace = 'normal';
				p.appendChild(el('b', f.code));
				p.appendChild(el('span', f.message, 'fmsg'));
				row(fl, f.path, [el('span', f.severity, 'badge sev-' + f.severity), p]);
			});
			fold(fl, 8);
			fd.appendChild(fl);
		} else {
			fd.appendChild(el('h2', 'Findings'));
			fd.appendChild(el('div', 'None: nothing here that Lambda would refuse or that looks wrong for the target.', 'ok'));
		}
	}

	/* ---- images: the layers, each one a treemap of what it adds ---- */
	var curLayer = null;
	function setRoot(root, li) {
		if (view[0] === root)
			return;
		curLayer = li;
		view = [root];
		Array.prototype.forEach.call(document.querySelectorAll('#layers .seg, #layers button'), function (b) {
			var v = b.getAttribute('data-layer');
			b.classList.toggle('on', v === (li === null ? 'all' : String(li)));
		});
		draw();
	}
	if (A.image && A.image.layers) {
		var I = A.image, L = $('layers');
		L.style.display = 'block';
		L.appendChild(el('h2', 'Layers: ' + I.layers.length + ', ' + hs(I.size_bytes) + ' uncompressed, ' +
			hs(I.compressed_bytes || 0) + ' compressed'));
		L.appendChild(el('div', 'Efficiency ' + pct(I.efficiency) + ', ' + hs(I.wasted_bytes) +
			' in files that a later layer replaces. Pick a layer to see what it adds to the final file system.', 'muted'));
		var strip = el('div', null, 'strip'), btns = el('div');
		var all = el('button', 'all layers');
		all.setAttribute('data-layer', 'all');
		all.className = 'on';
		all.addEventListener('click', function () { setRoot(T, null); });
		btns.appendChild(all);
		var pal = ['#3a6fc4', '#2f9e5a', '#7b57c2', '#e07b24', '#1f8f9c', '#c29b12', '#7d848f', '#d43f3f'];
		I.layers.forEach(function (l, i) {
			var s = el('div', '#' + l.index + ' ' + hs(l.size_bytes), 'seg');
			s.style.flex = Math.max(l.size_bytes, 1) + ' 1 0';
			s.style.background = pal[i % pal.length];
			s.title = '#' + l.index + ': ' + hs(l.size_bytes) + ', ' + l.files + ' files' + (l.created_by ? '\n' + l.created_by : '');
			s.setAttribute('data-layer', String(i));
			var b = el('button', '#' + l.index + ' ' + hs(l.size_bytes));
			b.setAttribute('data-layer', String(i));
			b.title = l.created_by || '';
			function pick() { if (LT[i]) setRoot(LT[i], i); }
			s.addEventListener('click', pick);
			b.addEventListener('click', pick);
			strip.appendChild(s);
			btns.appendChild(b);
		});
		L.appendChild(strip);
		L.appendChild(btns);
		var t = el('table'), h = el('tr');
		['#', 'size', 'compressed', 'files', 'created by'].forEach(function (c) { h.appendChild(el('th', c)); });
		t.appendChild(h);
		I.layers.forEach(function (l) {
			var r = el('tr');
			r.appendChild(el('td', l.index, 'n'));
			r.appendChild(el('td', hs(l.size_bytes), 'n'));
			r.appendChild(el('td', hs(l.compressed_bytes), 'n'));
			r.appendChild(el('td', l.files, 'n'));
			r.appendChild(el('td', l.created_by || '', 'path'));
			t.appendChild(r);
		});
		L.appendChild(t);
	}

	/* ---- details: the tables ---- */
	function table(title, cols, rows, open) {
		if (!rows.length)
			return;
		var d = el('details'), t = el('table'), h = el('tr');
		if (open)
			d.open = true;
		d.appendChild(el('summary', title));
		cols.forEach(function (c) { h.appendChild(el('th', c)); });
		t.appendChild(h);
		rows.forEach(function (r) {
			var tr = el('tr');
			r.forEach(function (c, i) { tr.appendChild(el('td', c, typeof c === 'number' || /^[0-9.]+ (B|KiB|MiB|GiB|TiB)$/.test(c) ? 'n' : i === 0 ? 'path' : '')); });
			t.appendChild(tr);
		});
		d.appendChild(t);
		$('tables').appendChild(d);
	}
	var C = A.contributors || { packages: [], directories: [], files: [] };
	function crow(c) { return [c.name, c.kind, hs(c.bytes), pct(c.share), c.count]; }
	table('Largest packages', ['name', 'kind', 'size', 'share', 'files'], C.packages.map(crow), true);
	table('Largest directories', ['name', 'kind', 'size', 'share', 'files'], C.directories.map(crow));
	table('Largest files', ['name', 'kind', 'size', 'share', 'files'], C.files.map(crow));
	if (A.duplicates)
		table('Duplicate files', ['paths', 'size', 'copies', 'extra'], A.duplicates.items.map(function (d) {
			return [d.paths.join('\n'), hs(d.size), d.count, hs(d.wasted)];
		}));
	if (A.image && A.image.multi_layer_files)
		table('Files in several layers', ['path', 'layers', 'cumulative'], A.image.multi_layer_files.map(function (m) {
			return [m.path, m.layers, hs(m.cumulative_bytes)];
		}));

	if (!$('tables').children.length)
		$('tables').style.display = 'none';
	draw();
	// A link to one box: report.html#path=node_modules/x opens zoomed on it.
	var m = /^#path=(.+)$/.exec(location.hash);
	if (m) {
		var hn = locate(decodeURIComponent(m[1]));
		if (hn)
			zoomTo(hn.c && hn.c.length ? hn : hn.parent || hn);
	}
	$('lp-rendered').setAttribute('data-biggest-package', C.packages.length ? C.packages[0].name : '');
})();
