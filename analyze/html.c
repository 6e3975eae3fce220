/* SPDX-License-Identifier: MIT */
/*
 * The HTML report: one self-contained page (inline CSS and JS, no network)
 * with a zoomable treemap and the tables. Data goes in as JSON inside a
 * <script type="application/json"> block and is only ever put into the
 * page with textContent, so hostile file names cannot inject markup.
 */
#include "analyze/internal.h"
#include "core/err.h"
#include "core/fsutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char page_head[] =
"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
"<title>lambdapack analyze</title>\n<style>\n"
"body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}\n"
"h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:20px 0 6px}\n"
"table{border-collapse:collapse;margin:4px 0;background:#fff}\n"
"td,th{padding:2px 10px;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}\n"
"td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
".bar{display:inline-block;height:9px;background:#4a7fd6;vertical-align:middle}\n"
".over{color:#b00020;font-weight:600}.ok{color:#1b7a1b}\n"
"#crumbs span{cursor:pointer;color:#2855a8;text-decoration:underline}#crumbs span.cur{color:#222;text-decoration:none;cursor:default}\n"
"#tm{position:relative;width:100%;height:460px;background:#fff;border:1px solid #ccc;overflow:hidden}\n"
"#tm div.t{position:absolute;box-sizing:border-box;border:1px solid #fff;overflow:hidden;font-size:11px;"
"padding:1px 3px;color:#fff;white-space:nowrap;text-overflow:ellipsis}\n"
"#tm div.z{cursor:zoom-in}\n"
".sev-error{color:#b00020;font-weight:600}.sev-warning{color:#a65f00}\n"
"</style></head><body>\n<h1>lambdapack analyze</h1>\n<div id=\"summary\"></div>\n"
"<h2>Treemap</h2><div id=\"crumbs\"></div><div id=\"tm\"></div>\n"
"<div id=\"tables\"></div>\n<script id=\"lp-data\" type=\"application/json\">";

static const char page_tail[] =
"</script>\n<script>\n"
"'use strict';\n"
"window.addEventListener('error',function(ev){var d=document.createElement('div');d.id='lp-error';"
"d.textContent='error: '+ev.message;document.body.appendChild(d);});\n"
"(function(){\n"
"var D=JSON.parse(document.getElementById('lp-data').textContent);var A=D.analysis,T=D.tree;\n"
"function el(t,txt,cls){var e=document.createElement(t);if(txt!==undefined&&txt!==null)e.textContent=String(txt);if(cls)e.className=cls;return e;}\n"
"function hs(n){var u=['B','KiB','MiB','GiB','TiB'],i=0;if(n<1024)return n+' B';while(n>=1024&&i<4){n/=1024;i++;}"
"return (n>=100?n.toFixed(0):n>=10?n.toFixed(1):n.toFixed(2))+' '+u[i];}\n"
"function pct(x){return (x*100).toFixed(1)+'%';}\n"
"function table(title,cols,rows){var h=el('h2',title),t=el('table'),tr=el('tr');"
"cols.forEach(function(c){tr.appendChild(el('th',c));});t.appendChild(tr);"
"rows.forEach(function(r){var tr=el('tr');r.forEach(function(c){var td;if(c&&c.bar!==undefined){td=el('td');"
"var b=el('span',null,'bar');b.style.width=Math.max(1,Math.round(c.bar*160))+'px';td.appendChild(b);}"
"else if(typeof c==='number'){td=el('td',c,'n');}else if(c&&c.cls){td=el('td',c.t,c.cls);}else{td=el('td',c);}tr.appendChild(td);});t.appendChild(tr);});"
"var box=document.getElementById('tables');box.appendChild(h);box.appendChild(t);}\n"
"var s=document.getElementById('summary');\n"
"s.appendChild(el('div',A.artifact.path+' ('+A.artifact.type+'): '+A.totals.files+' files, '+hs(A.totals.unzipped_bytes)+' unzipped'+"
"(A.totals.zipped_bytes!==null?', '+(A.totals.zipped_estimated?'about ':'')+hs(A.totals.zipped_bytes)+' zipped':'')));\n"
"table('Budgets',['budget','used','limit','%','',''],Object.keys(A.limits).map(function(n){var b=A.limits[n];return [n,hs(b.used),hs(b.limit),"
"b.percent.toFixed(1)+'%',{bar:Math.min(1,b.percent/100)},!b.fits?{t:'OVER by '+hs(b.over_by),cls:'over'}:{t:'ok, '+hs(b.headroom)+' left',cls:'ok'}];}));\n"
"function ctab(title,list){table(title,['name','kind','bytes','','share','files'],list.map(function(c){return [c.name,c.kind,hs(c.bytes),{bar:c.share},pct(c.share),c.count];}));}\n"
"ctab('Largest packages',A.contributors.packages);ctab('Largest directories',A.contributors.directories);ctab('Largest files',A.contributors.files);\n"
"var sv=A.savings;table('What pack --optimize would save: '+hs(sv.total),['category','bytes','files'],"
"[['strip',hs(sv.strip.bytes),sv.strip.count],['dedupe',hs(sv.dedupe.bytes),sv.dedupe.count],"
"['prune foreign',hs(sv.prune_foreign.bytes),sv.prune_foreign.count],['prune junk',hs(sv.prune_junk.bytes),sv.prune_junk.count]]);\n"
"if(sv.items.length)table('Savings by file',['action','path','bytes','detail'],sv.items.map(function(i){return [i.action,i.path,hs(i.bytes),i.detail||''];}));\n"
"if(A.duplicates.items.length)table('Duplicate groups ('+hs(A.duplicates.wasted_bytes)+' wasted)',['size','copies','wasted','paths'],"
"A.duplicates.items.map(function(d){return [hs(d.size),d.count,hs(d.wasted),d.paths.join(', ')];}));\n"
"table('Findings',['severity','code','path','message'],A.findings.map(function(f){return [{t:f.severity,cls:'sev-'+f.severity},f.code,f.path||'',f.message];}));\n"
"if(A.image){var I=A.image;s.appendChild(el('div','Image: '+(I.os||'?')+'/'+(I.architecture||'?')+', '+I.layers.length+' layers, '+hs(I.size_bytes)+"
"' uncompressed; efficiency '+(I.efficiency*100).toFixed(4)+'%, wasted '+hs(I.wasted_bytes)+', user wasted '+pct(I.user_wasted_percent)));\n"
"table('Layers',['#','size','compressed','files','','created by'],I.layers.map(function(l){return [l.index,hs(l.size_bytes),hs(l.compressed_bytes),l.files,{bar:l.share},l.created_by||''];}));\n"
"if(I.multi_layer_files.length)table('Files in several layers',['path','layers','cumulative'],I.multi_layer_files.map(function(m){return [m.path,m.layers,hs(m.cumulative_bytes)];}));}\n"
"var tm=document.getElementById('tm'),cr=document.getElementById('crumbs'),stack=[T];\n"
"var pal={d:'#4a7fd6',f:'#6c8ebf',p:'#d6844a',m:'#999'};\n"
"function squarify(items,x,y,w,h,out){if(!items.length)return;var tot=0;items.forEach(function(i){tot+=i.v;});if(tot<=0)return;\n"
" var scale=w*h/tot,row=[],rs=0,i=0;\n"
" function worst(r,s,side){var mx=0,mn=Infinity;r.forEach(function(q){var a=q.v*scale;mx=Math.max(mx,a);mn=Math.min(mn,a);});"
"var ss=s*scale;return Math.max(side*side*mx/(ss*ss),ss*ss/(side*side*mn));}\n"
" while(i<items.length){var side=Math.min(w,h),it=items[i];\n"
"  if(!row.length||worst(row.concat([it]),rs+it.v,side)<=worst(row,rs,side)){row.push(it);rs+=it.v;i++;continue;}\n"
"  var a=rs*scale;if(w>=h){var cw=a/h,cy=y;row.forEach(function(q){var ch=q.v*scale/cw;out.push([q,x,cy,cw,ch]);cy+=ch;});x+=cw;w-=cw;}\n"
"  else{var rh=a/w,cx=x;row.forEach(function(q){var cw2=q.v*scale/rh;out.push([q,cx,y,cw2,rh]);cx+=cw2;});y+=rh;h-=rh;}row=[];rs=0;}\n"
" if(row.length){var a2=rs*scale;if(w>=h){var cw3=a2/h,cy3=y;row.forEach(function(q){var ch3=q.v*scale/cw3;out.push([q,x,cy3,cw3,ch3]);cy3+=ch3;});}"
"else{var rh4=a2/w,cx4=x;row.forEach(function(q){var cw4=q.v*scale/rh4;out.push([q,cx4,y,cw4,rh4]);cx4+=cw4;});}}}\n"
"function draw(){var node=stack[stack.length-1];tm.textContent='';cr.textContent='';\n"
" stack.forEach(function(n,i){if(i)cr.appendChild(document.createTextNode(' / '));var sp=el('span',i?n.n:'(root)');"
"if(i===stack.length-1)sp.className='cur';else sp.addEventListener('click',function(){stack=stack.slice(0,i+1);draw();});cr.appendChild(sp);});\n"
" cr.appendChild(document.createTextNode('  '+hs(node.s)));\n"
" var kids=(node.c||[]).filter(function(k){return k.s>0;}).map(function(k){return {v:k.s,n:k};});var out=[];\n"
" squarify(kids,0,0,tm.clientWidth||800,tm.clientHeight||460,out);\n"
" out.forEach(function(o){var n=o[0].n,d=el('div',n.n+' '+hs(n.s),'t');d.style.left=o[1]+'px';d.style.top=o[2]+'px';"
"d.style.width=o[3]+'px';d.style.height=o[4]+'px';d.style.background=pal[n.k]||'#888';d.title=n.n+' '+hs(n.s);\n"
"  if(n.c&&n.c.length){d.className+=' z';d.addEventListener('click',function(){stack.push(n);draw();});}tm.appendChild(d);});}\n"
"draw();\n"
"var m=el('div','rendered','');m.id='lp-rendered';m.style.display='none';"
"m.setAttribute('data-biggest-package',A.contributors.packages.length?A.contributors.packages[0].name:'');document.body.appendChild(m);\n"
"})();\n</script>\n</body></html>\n";

/* JSON inside <script>: "</" would end the element early; "<\/" is the same JSON string. */
static int write_escaped(int fd, const char *s)
{
	size_t n = strlen(s), cap = n + n / 8 + 16, k = 0;
	char *b = malloc(cap);
	int r;

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (k + 3 >= cap) {
			char *nb = realloc(b, cap *= 2);

			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
		}
		if (s[i] == '<' && (s[i + 1] == '/' || s[i + 1] == '!')) {
			memcpy(b + k, "\\u003c", 6);
			k += 6;
			continue;
		}
		b[k++] = s[i];
	}
	r = lp_write_all(fd, b, k);
	free(b);
	return r;
}

int lp_analyze_html(const struct lp_analysis *a, const struct lp_ana_out *o, const char *path)
{
	struct lp_outfile of;
	cJSON *doc = cJSON_CreateObject(), *an, *tree;
	char *text = NULL;
	int r;

	if (!doc)
		return -ENOMEM;
	an = lp_analyze_json(a, o);
	if (!an || !cJSON_AddItemToObject(doc, "analysis", an)) {
		cJSON_Delete(an);
		cJSON_Delete(doc);
		return -ENOMEM;
	}
	tree = ana_tree_json(a);
	if (!tree || !cJSON_AddItemToObject(doc, "tree", tree)) {
		cJSON_Delete(tree);
		cJSON_Delete(doc);
		return -ENOMEM;
	}
	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (!text)
		return -ENOMEM;
	r = lp_outfile_open(&of, path);
	if (r < 0) {
		free(text);
		return lp_fail(r, path, "cannot create: %s", strerror(-r));
	}
	r = lp_write_all(of.fd, page_head, sizeof(page_head) - 1);
	if (r == 0)
		r = write_escaped(of.fd, text);
	if (r == 0)
		r = lp_write_all(of.fd, page_tail, sizeof(page_tail) - 1);
	free(text);
	if (r == 0)
		r = lp_outfile_commit(&of);
	else
		lp_outfile_abort(&of);
	if (r < 0)
		return lp_fail(r, path, "cannot write: %s", strerror(-r));
	return 0;
}
